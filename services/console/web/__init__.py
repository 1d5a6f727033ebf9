"""The console's pages: routes that render Jinja2 templates (`templates/`), htmx for partial
updates and actions, static files (`static/`). Every page calls the services' APIs as the
signed-in user (services_api.py) and declares the permission it needs, like any route."""
