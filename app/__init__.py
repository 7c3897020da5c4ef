"""SPX Terminal Qt application."""
