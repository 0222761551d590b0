"""Models of the annotator app."""
