"""comanage-dashboard: a web dashboard for Configuration Manager co-management with Intune."""

__version__ = "0.1.0"
