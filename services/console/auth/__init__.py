"""Signing in to the console and the session that keeps the user's token.

The session is a signed cookie (Starlette's SessionMiddleware, itsdangerous) holding the user's
access token; shared/platform/auth.py reads the token from it when a request carries no bearer
header, so the console's routes declare their permission with `requires(...)` like any other.
A request for a page without a session is sent to the sign-in page.
"""
