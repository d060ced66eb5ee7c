"""The one composition root: builds every handler's collaborators from settings, for Lambda and the local stack."""
