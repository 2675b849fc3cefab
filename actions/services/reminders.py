"""The overdue digest: each owner hears once about each of their actions whose due date has passed.

An :class:`ActionReminder` row per action, owner and due date is the "once": the digest writes the
rows and queues the emails in one transaction, so a re-run (a second beat tick, a redelivered task,
two workers at once) finds the rows and sends nothing again. A due date moved later is a new due
date: when it passes, the owner is reminded again. A new owner is reminded of an overdue action
even if the previous owner was. An email the mail server refuses is logged, not retried: a
reminder is sent at most once.

The rows are the record of what was sent; the digest writes no audit event, as it changes nothing
a person decided.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.utils import timezone

from actions.models import ActionItem, ActionReminder
from partnerhub.tenancy.emails import Email, send_on_commit, subject
from partnerhub.tenancy.models import Membership
from partnerhub.tenancy.roles import INTERNAL_ROLES, PARTNER_ROLES


@dataclass(frozen=True, slots=True)
class DigestSent:
    """What one run of the digest did."""

    emails: int
    reminders: int


def _still_entitled_owner() -> Exists:
    """The owner still belongs to the workspace, as one of the program's people or a user of the action's partner."""
    return Exists(
        Membership.objects.filter(user_id=OuterRef("owner_id")).filter(
            Q(role__in=sorted(INTERNAL_ROLES)) | Q(role__in=sorted(PARTNER_ROLES), partner_id=OuterRef("partner_id"))
        )
    )


def _reminded() -> Exists:
    return Exists(
        ActionReminder.objects.filter(
            action_id=OuterRef("pk"), owner_id=OuterRef("owner_id"), due_on=OuterRef("due_on")
        )
    )


def due_reminders(*, today: datetime.date):
    """Overdue actions whose owner has not been reminded of the current due date yet."""
    return (
        ActionItem.objects.overdue(today)
        .filter(owner__isnull=False, owner__is_active=True)
        .filter(_still_entitled_owner())
        .exclude(_reminded())
    )


@transaction.atomic
def overdue_reminders_send(*, today: datetime.date) -> DigestSent:
    """Email every owner one digest of their overdue actions not yet reminded for their current due date."""
    # Races: two digests of the same workspace at once (a redelivered task next to the original)
    # must not both send. Each locks the actions it is about to remind, in primary-key order so two
    # runs never deadlock. The second run waits here until the first commits; the reminders are
    # then read again in a statement of their own, which (READ COMMITTED: a new snapshot per
    # statement) sees the rows the first run committed, so the second run drops those actions.
    # The filter above cannot do this by itself: PostgreSQL re-checks a locked row's conditions
    # only when that row itself changed, and here only the reminder table did. Should anything
    # still slip through, the unique constraint on (action, owner, due date) makes the insert fail
    # and the whole run roll back, emails included: nothing is sent twice. An action changed
    # meanwhile (done, given a new owner or due date) is re-checked by the lock itself.
    candidates = list(
        due_reminders(today=today).select_for_update(of=("self",)).select_related("partner", "owner").order_by("pk")
    )
    if not candidates:
        return DigestSent(emails=0, reminders=0)
    sent = set(
        ActionReminder.objects.filter(action_id__in=[action.pk for action in candidates]).values_list(
            "action_id", "owner_id", "due_on"
        )
    )
    todo = [action for action in candidates if (action.pk, action.owner_id, action.due_on) not in sent]
    if not todo:
        return DigestSent(emails=0, reminders=0)
    now = timezone.now()
    ActionReminder.objects.bulk_create(
        ActionReminder(
            tenant_id=action.tenant_id, action=action, owner_id=action.owner_id, due_on=action.due_on, sent_at=now
        )
        for action in todo
    )
    by_owner: dict[int, list[ActionItem]] = defaultdict(list)
    for action in todo:
        by_owner[action.owner_id].append(action)
    emails = [_digest(owner_actions, today=today) for owner_actions in by_owner.values()]
    send_on_commit(emails)
    return DigestSent(emails=len(emails), reminders=len(todo))


def _digest(actions: list[ActionItem], *, today: datetime.date) -> Email:
    owner = actions[0].owner
    ordered = sorted(actions, key=lambda action: (action.due_on, action.partner.name, action.pk))
    context = {"owner": owner, "actions": [{"action": a, "days": (today - a.due_on).days} for a in ordered]}
    count = len(ordered)
    what = "An action you own is overdue" if count == 1 else f"{count} actions you own are overdue"
    return Email(
        subject=subject(what),
        body=render_to_string("actions/email/overdue.txt", context),
        recipients=(owner.email,),
    )
