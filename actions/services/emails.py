"""Emails about actions: rendered inside the transaction, sent once it commits."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from smtplib import SMTPException

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Email:
    subject: str
    body: str
    recipients: tuple[str, ...]


def subject(text: str) -> str:
    return f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{text}"


def _send(emails: Iterable[Email]) -> None:
    """A mail server that is down is logged, never turned into an error (or a retried job)."""
    for email in emails:
        try:
            send_mail(
                subject=email.subject,
                message=email.body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=list(email.recipients),
            )
        except (SMTPException, OSError):
            logger.exception("Could not send “%s” to %s", email.subject, ", ".join(email.recipients))


def send_on_commit(emails: Iterable[Email | None]) -> None:
    # Rendered by the caller inside the tenant's scope; only the sending waits for the commit, so
    # a rolled-back change sends nothing and the callback needs no database.
    ready = [email for email in emails if email is not None and email.recipients]
    if ready:
        transaction.on_commit(partial(_send, ready))
