"""The API's route handlers, by area."""
