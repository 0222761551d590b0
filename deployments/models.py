"""Models of the deployments app."""
