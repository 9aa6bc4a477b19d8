"""Translation of boto3 failures into the target's errors: AWS's code and message, and advice."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from flows.errors import TargetError
from flows.targets.aws.errors import AwsDeployError, AwsSwapError, AwsTargetError, translate


def client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "UpdateEnvironment")


def test_client_error_keeps_code_message_and_gets_advice() -> None:
    error = translate(
        client_error("InsufficientPrivilegesException", "not allowed"), AwsDeployError, "UpdateEnvironment"
    )
    assert isinstance(error, AwsDeployError) and isinstance(error, TargetError)
    assert (error.code, error.aws_message, error.operation) == (
        "InsufficientPrivilegesException",
        "not allowed",
        "UpdateEnvironment",
    )
    assert str(error).startswith(
        "deploying the version failed (UpdateEnvironment): InsufficientPrivilegesException: not allowed;"
    )
    assert "README" in error.hint


def test_caller_hint_comes_first_and_unknown_codes_get_the_default() -> None:
    error = translate(
        client_error("SomethingNew", "odd"), AwsSwapError, "SwapEnvironmentCNAMEs", hint="prod is unchanged"
    )
    assert error.hint == "prod is unchanged"
    error = translate(client_error("SomethingNew", "odd"), AwsSwapError, "SwapEnvironmentCNAMEs")
    assert "deliverypipeline aws status" in error.hint


def test_busy_environment_message_is_recognised() -> None:
    message = (
        "Environment named deliverypipeline-node-2 is in an invalid state for this operation. Must be Ready."
    )
    error = translate(client_error("InvalidParameterValue", message), AwsDeployError, "UpdateEnvironment")
    assert "another operation is running" in error.hint


def test_missing_credentials_and_unreachable_endpoint() -> None:
    error = translate(NoCredentialsError(), AwsTargetError, "DescribeEnvironments")
    assert error.code == "NoCredentials" and "AWS_PROFILE" in error.hint
    error = translate(
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9/"), AwsTargetError, "DescribeEvents"
    )
    assert error.code == "EndpointConnectionError" and "endpoint_url" in error.hint


def test_other_exceptions_are_not_swallowed() -> None:
    with pytest.raises(KeyError):
        translate(KeyError("x"), AwsTargetError, "DescribeEnvironments")
