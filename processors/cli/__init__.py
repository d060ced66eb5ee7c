"""The `dynafold` command line (never shipped to Lambda): one module per command group."""
