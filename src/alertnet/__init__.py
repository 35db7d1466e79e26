"""alertnet: every panic-button press becomes exactly one alert, sent to the nearest patrol."""

__version__ = "0.1.0"
