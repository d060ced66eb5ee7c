"""The console's pages: each module reads what its page shows and hands it to its template."""
