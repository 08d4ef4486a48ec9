"""The `compressor` command line (typer + rich); one module per command."""
