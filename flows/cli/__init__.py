"""The `deliverypipeline` command (`main`) and its subcommands, each a thin layer over a stage."""
