"""Clients the page and API tests act through: a member's browser session, an API key, JSON calls."""

from __future__ import annotations

from django.test import Client


def session(tw, role: str) -> Client:
    """A browser session signed in as the world tenant's member of ``role``."""
    client = Client()
    client.force_login(tw.users[role])
    return client


def key(tw, which: str = "read_key") -> Client:
    """A client calling with the world tenant's read-only (``read_key``) or read-write (``write_key``) API key."""
    return Client(HTTP_AUTHORIZATION=f"Api-Key {getattr(tw, which)[1]}")


def url(base: str, pk: int, command: str = "") -> str:
    """An API row's address, or one of its commands: ``/api/v1/reviews/7/transition/``."""
    return f"{base}{pk}/{command + '/' if command else ''}"


def post(client: Client, path: str, body: dict):
    return client.post(path, body, content_type="application/json")


def patch(client: Client, path: str, body: dict):
    return client.patch(path, body, content_type="application/json")
