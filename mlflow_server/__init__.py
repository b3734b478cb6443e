"""How the MLflow tracking server is started and configured."""
