"""The AWS Elastic Beanstalk target: two EB environments whose CNAMEs are swapped by the release."""
