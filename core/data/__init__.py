"""Datasets: real loaders for local files, and the small embedded defaults the project makes."""
