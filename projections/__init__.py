"""The read side: one pure fold per view, the view store, and queries over the view tables."""
