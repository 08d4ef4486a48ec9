"""`python -m compressor` runs the CLI (same as the `compressor` command)."""

from compressor.cli.app import main

if __name__ == "__main__":
    main()
