"""`seed_demo`: two demo workspaces with partners, people of every role, a read-only API key, and a
governed scorecard with eight quarters of observations and computed scores.

Deterministic (a fixed random seed) and idempotent: rows are looked up by their natural keys
(tenant slug, email, partner name, key name) and only the missing ones are created, through the
same services the portal uses, so the audit log tells the story of the seed like any other change.
The scorecard part lives in ``partnerhub.tenancy.management.demo_scorecards``, the reviews and
their follow-up in ``partnerhub.tenancy.management.demo_reviews``.
"""

from __future__ import annotations

import datetime
import random
import string
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand
from django.db import transaction

from partnerhub.partners.models import DEFAULT_PARTNER_TYPES, LifecycleStage, Partner, PartnerStatus, PartnerType
from partnerhub.partners.services import partner_create
from partnerhub.tenancy.context import tenant_scope
from partnerhub.tenancy.management.demo_ingestion import seed_ingestion
from partnerhub.tenancy.management.demo_reviews import seed_reviews
from partnerhub.tenancy.management.demo_scorecards import SCORECARD_NAME, SeededScorecard, seed_scorecard
from partnerhub.tenancy.models import ApiKey, ApiKeyAccess, Membership, Tenant, User
from partnerhub.tenancy.roles import Role
from partnerhub.tenancy.services import api_key_create, membership_create, tenant_create

DEMO_PASSWORD = "partnerhub-demo"  # noqa: S105 - the published password of the demo accounts
DEMO_API_KEY_NAME = "Demo integration (read only)"
SHARED_PARTNER_NAME = "Alpine Systems GmbH"

REGIONS = [
    "North America — West",
    "North America — East",
    "EMEA — DACH",
    "EMEA — UK & Ireland",
    "APAC — ANZ",
    "LATAM — Brazil",
]
LEGAL_FORMS = {
    "North America — West": ["Inc.", "LLC", "Corp."],
    "North America — East": ["Inc.", "LLC", "Group"],
    "EMEA — DACH": ["GmbH", "AG", "GmbH & Co. KG"],
    "EMEA — UK & Ireland": ["Ltd", "plc", "Ltd"],
    "APAC — ANZ": ["Pty Ltd", "Ltd", "Pty Ltd"],
    "LATAM — Brazil": ["Ltda.", "S.A.", "Ltda."],
}
NAME_STEMS = [
    "Aurora", "Bayside", "Bluewater", "Brightpath", "Cascade", "Cedar", "Cobalt", "Copperleaf", "Crestline",
    "Delta", "Driftwood", "Evergreen", "Fairview", "Fjord", "Foxglove", "Granite", "Harbor", "Highland",
    "Ironbridge", "Juniper", "Keystone", "Lakeshore", "Lighthouse", "Meridian", "Millbrook", "Northgate",
    "Oakridge", "Orchid", "Pacific Rim", "Pinnacle", "Quarry", "Redwood", "Riverbend", "Sandstone",
    "Silverline", "Southpoint", "Stonebridge", "Summit", "Tidewater", "Timberline", "Union Square",
    "Vantage", "Westbrook", "Willow", "Windward", "Zenith",
]  # fmt: skip
NAME_TAILS = [
    "Systems", "Solutions", "Consulting", "Networks", "Digital", "Data", "Technologies", "IT Services",
    "Integration", "Cloud", "Partners", "Analytics",
]  # fmt: skip
ID_ALPHABET = string.ascii_letters + string.digits
PRODUCT_LINES = ["Analytics", "Cloud Platform", "Data Integration", "Security", "Collaboration", "Edge Devices"]
TYPE_KEYS = [key for key, _ in DEFAULT_PARTNER_TYPES]
TYPE_WEIGHTS = [30, 15, 12, 18, 15, 10]
STAGES = list(LifecycleStage.values)
STAGE_WEIGHTS = [15, 30, 35, 15, 5]
STATUSES = list(PartnerStatus.values)
STATUS_WEIGHTS = [86, 8, 6]
# Fixed, so that the same seed gives the same dates whenever it runs.
REFERENCE_DATE = datetime.date(2025, 6, 30)


@dataclass(frozen=True)
class Person:
    email: str
    full_name: str
    role: str
    sees: str
    partner: str | None = None  # partner name, for partner roles


@dataclass(frozen=True)
class Workspace:
    name: str
    slug: str
    fiscal_year_start_month: int
    seed: int
    partner_count: int
    code: str  # prefix of the demo ERP ids
    people: list[Person]
    fixed_partners: list[dict] = field(default_factory=list)
    # Partner name -> the scorecard history it is given; the others get one by chance.
    fixed_histories: dict[str, str] = field(default_factory=dict)

    @property
    def approver(self) -> Person:
        """The second administrator, who approves the rules the first one proposes."""
        return [person for person in self.people if person.role == Role.ADMIN][1]


ALPINE = {
    "name": SHARED_PARTNER_NAME,
    "partner_type": "reseller",
    "lifecycle_stage": LifecycleStage.GROWING,
    "status": PartnerStatus.ACTIVE,
    "region": "EMEA — DACH",
    "product_lines": ["Analytics", "Cloud Platform"],
    "size": Decimal("12"),
    "website": "https://alpine-systems.example",
    "joined_on": datetime.date(2023, 3, 1),
}

PARTNER_SEES = "Their own partner only, in the partner portal"

NORTHWIND = Workspace(
    name="Northwind Software",
    slug="northwind",
    fiscal_year_start_month=2,
    seed=2024_02_01,
    partner_count=80,
    code="NW",
    people=[
        Person("admin@northwind.demo", "Nadia Okafor", Role.ADMIN, "Everything: partners, people, API keys, audit log"),
        Person(
            "channel@northwind.demo",
            "Tomás Herrera",
            Role.ADMIN,
            "Everything, as Head of Channel; approves the scorecard rules the administrator proposes",
        ),
        Person("manager@northwind.demo", "Marco Rossi", Role.PARTNER_MANAGER, "The partner directory; edits partners"),
        Person("manager2@northwind.demo", "Priya Raman", Role.PARTNER_MANAGER, "The partner directory; edits partners"),
        Person(
            "manager3@northwind.demo", "Sam Lindqvist", Role.PARTNER_MANAGER, "The partner directory; edits partners"
        ),
        Person("executive@northwind.demo", "Elena Fischer", Role.EXECUTIVE, "The partner directory, read only"),
        Person("admin@alpine.demo", "Jonas Weber", Role.PARTNER_ADMIN, PARTNER_SEES, SHARED_PARTNER_NAME),
        Person("member@alpine.demo", "Lea Brunner", Role.PARTNER_MEMBER, PARTNER_SEES, SHARED_PARTNER_NAME),
    ],
    fixed_partners=[{**ALPINE, "hubspot_company_id": "18340021", "salesforce_account_id": "0015g00000AlpNWAAZ"}],
    fixed_histories={SHARED_PARTNER_NAME: "alpine"},
)

CONTOSO = Workspace(
    name="Contoso Cloud",
    slug="contoso",
    fiscal_year_start_month=7,
    seed=2024_07_01,
    partner_count=20,
    code="CC",
    people=[
        Person("admin@contoso.demo", "Chris Doyle", Role.ADMIN, "Everything: partners, people, API keys, audit log"),
        Person(
            "channel@contoso.demo",
            "Ines Carvalho",
            Role.ADMIN,
            "Everything, as Head of Channel; approves the scorecard rules the administrator proposes",
        ),
        Person("manager@contoso.demo", "Amara Nwosu", Role.PARTNER_MANAGER, "The partner directory; edits partners"),
        Person(
            "admin@alpine.demo",
            "Jonas Weber",
            Role.PARTNER_ADMIN,
            "Alpine's portal here too: the sidebar switches workspaces",
            SHARED_PARTNER_NAME,
        ),
    ],
    fixed_partners=[{**ALPINE, "hubspot_company_id": "27710458", "salesforce_account_id": "0016e00000AlpCCAAQ"}],
    fixed_histories={SHARED_PARTNER_NAME: "alpine"},
)

WORKSPACES = [NORTHWIND, CONTOSO]


def partner_specs(workspace: Workspace) -> list[dict]:
    """The workspace's partners, the same list on every run: fixed ones first, then generated."""
    rng = random.Random(workspace.seed)  # noqa: S311 - demo data, deliberately reproducible
    specs = [dict(spec) for spec in workspace.fixed_partners]
    names = {spec["name"].lower() for spec in specs}
    hubspot_ids = {spec["hubspot_company_id"] for spec in specs}
    salesforce_ids = {spec["salesforce_account_id"] for spec in specs}

    def pick(index: int, values: list, weights: list):
        # The first partners walk through every value, so each one appears at least once.
        return values[index] if index < len(values) else rng.choices(values, weights)[0]

    index = 0
    while len(specs) < workspace.partner_count:
        region = REGIONS[index % len(REGIONS)] if index < len(REGIONS) else rng.choice(REGIONS)
        name = f"{rng.choice(NAME_STEMS)} {rng.choice(NAME_TAILS)} {rng.choice(LEGAL_FORMS[region])}"
        if name.lower() in names:
            continue
        names.add(name.lower())
        type_key = pick(index, TYPE_KEYS, TYPE_WEIGHTS)
        stage = pick(index, STAGES, STAGE_WEIGHTS)
        status = pick(index, STATUSES, STATUS_WEIGHTS)
        if status == PartnerStatus.TERMINATED and index >= len(STAGES):
            stage = LifecycleStage.EXITING
        if stage == LifecycleStage.ONBOARDING:
            joined_on = REFERENCE_DATE - datetime.timedelta(days=rng.randint(10, 300))
        else:
            joined_on = REFERENCE_DATE - datetime.timedelta(days=rng.randint(300, 2600))
        spec = {
            "name": name,
            "partner_type": type_key,
            "lifecycle_stage": stage,
            "status": status,
            "region": region,
            "product_lines": rng.sample(PRODUCT_LINES, rng.randint(1, 3)),
            "size": None if type_key == "referral" and rng.random() < 0.5 else Decimal(rng.randint(2, 240)),
            "website": "https://" + name.split()[0].lower() + "-" + name.split()[1].lower() + ".example",
            "joined_on": joined_on,
        }
        if rng.random() < 0.9:
            spec["hubspot_company_id"] = _unique(hubspot_ids, lambda: str(rng.randint(10_000_000, 99_999_999)))
        if rng.random() < 0.8:
            spec["salesforce_account_id"] = _unique(
                salesforce_ids, lambda: "0015g00000" + "".join(rng.choice(ID_ALPHABET) for _ in range(8))
            )
        if rng.random() < 0.5:
            spec["external_ids"] = {"erp": f"{workspace.code}-{index + 1:04d}"}
        specs.append(spec)
        index += 1
    return specs


def _unique(taken: set[str], make) -> str:
    value = make()
    while value in taken:
        value = make()
    taken.add(value)
    return value


class Command(BaseCommand):
    help = "Load the demo workspaces (Northwind Software, Contoso Cloud). Safe to run again."

    def handle(self, *args, **options):
        self.created: Counter[str] = Counter()
        self.scorecards: list[tuple[str, SeededScorecard]] = []
        new_keys: list[tuple[str, str]] = []
        with transaction.atomic():
            for workspace in WORKSPACES:
                new_key = self._seed_workspace(workspace)
                if new_key:
                    new_keys.append((workspace.name, new_key))
        self._report(new_keys)

    # --- Writing -----------------------------------------------------------------------------------

    def _seed_workspace(self, workspace: Workspace) -> str | None:
        tenant = Tenant.objects.filter(slug=workspace.slug).first()
        if tenant is None:
            tenant = tenant_create(
                name=workspace.name, slug=workspace.slug, fiscal_year_start_month=workspace.fiscal_year_start_month
            )
            self.created["workspace"] += 1
        with tenant_scope(tenant):
            # The first person is the workspace's administrator and adds everyone else.
            admin = self._member(workspace.people[0], by=None)
            managers = []
            users = {}
            for person in workspace.people[1:]:
                if person.partner is None:
                    users[person.email] = user = self._member(person, by=admin)
                    if person.role == Role.PARTNER_MANAGER:
                        managers.append(user)
            self._partners(workspace, managers=managers or [admin], by=admin)
            for person in workspace.people:
                if person.partner is not None:
                    self._member(person, by=admin, partner=Partner.objects.get(name=person.partner))
            self._scorecard(workspace, tenant, admin=admin, approver=users[workspace.approver.email])
            if workspace is NORTHWIND:
                return self._demo_api_key(by=admin)
        return None

    def _scorecard(self, workspace: Workspace, tenant: Tenant, *, admin: User, approver: User) -> None:
        seeded = seed_scorecard(
            tenant=tenant,
            admin=admin,
            approver=approver,
            seed=workspace.seed,
            specs=partner_specs(workspace),
            fixed=workspace.fixed_histories,
        )
        for what, count in (
            ("scorecard version", int(seeded.version_created)),
            ("observation", seeded.observations_created),
            ("score", seeded.scores_written),
        ):
            if count:
                self.created[what] += count
        self.scorecards.append((workspace.name, seeded))
        if workspace is NORTHWIND:  # one workspace tells the ingestion story
            self.created.update(
                seed_ingestion(
                    tenant=tenant, admin=admin, seeded=seeded, workspace=workspace, specs=partner_specs(workspace)
                )
            )
        # Reviews follow the scores: Northwind's in full, Contoso's cycle just opened.
        self.created.update(
            seed_reviews(tenant=tenant, admin=admin, periods=seeded.periods, full=workspace is NORTHWIND)
        )

    def _user(self, person: Person) -> User:
        user = User.objects.filter(email=person.email).first()
        if user is None:
            user = User.objects.create_user(person.email, password=DEMO_PASSWORD, full_name=person.full_name)
            self.created["account"] += 1
        # The demo addresses count as verified, so sign-in works when verification is mandatory.
        EmailAddress.objects.get_or_create(user=user, email=person.email, defaults={"verified": True, "primary": True})
        return user

    def _member(self, person: Person, *, by: User | None, partner: Partner | None = None) -> User:
        user = self._user(person)
        if not Membership.objects.filter(user=user).exists():
            membership_create(user=user, role=person.role, partner=partner, by=by)
            self.created["membership"] += 1
        return user

    def _partners(self, workspace: Workspace, *, managers: list[User], by: User) -> None:
        types = {partner_type.key: partner_type for partner_type in PartnerType.objects.all()}
        existing = {name.lower() for name in Partner.objects.values_list("name", flat=True)}
        for index, spec in enumerate(partner_specs(workspace)):
            if spec["name"].lower() in existing:
                continue
            fields = {**spec, "partner_type": types[spec["partner_type"]], "manager": managers[index % len(managers)]}
            partner_create(by=by, **fields)
            self.created["partner"] += 1

    def _demo_api_key(self, *, by: User) -> str | None:
        if ApiKey.objects.filter(name__iexact=DEMO_API_KEY_NAME, revoked_at__isnull=True).exists():
            return None
        _key, plaintext = api_key_create(name=DEMO_API_KEY_NAME, access=ApiKeyAccess.READ_ONLY, by=by)
        self.created["API key"] += 1
        return plaintext

    # --- Output ------------------------------------------------------------------------------------

    def _report(self, new_keys: list[tuple[str, str]]) -> None:
        out = self.stdout
        if self.created:
            counts = (f"{n} {what}{'' if n == 1 else 's'}" for what, n in self.created.items())
            out.write("Demo data created: " + ", ".join(counts) + ".")
        else:
            out.write("Demo data already in place; nothing to create.")
        out.write(f"Every demo account signs in with the password “{DEMO_PASSWORD}”.")
        rows = [("Role", "Email", "Password", "What they see")]
        seen: set[str] = set()
        for workspace in WORKSPACES:
            for person in workspace.people:
                if person.email in seen:
                    continue
                seen.add(person.email)
                role = f"{Role(person.role).label}, {workspace.name}"
                sees = person.sees
                if person.partner:
                    role = f"{Role(person.role).label}, {person.partner}"
                    workspaces = [w.name for w in WORKSPACES if any(p.email == person.email for p in w.people)]
                    if len(workspaces) > 1:
                        sees = f"{sees}; in {' and '.join(workspaces)} (workspace switcher)"
                rows.append((role, person.email, DEMO_PASSWORD, sees))
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        out.write("")
        for number, row in enumerate(rows):
            out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[3])
            if number == 0:
                out.write("  ".join("-" * width for width in widths) + "  " + "-" * len(row[3]))
        out.write("")
        for workspace_name, seeded in self.scorecards:
            version = seeded.version
            out.write(
                f"Scorecard “{SCORECARD_NAME}” of {workspace_name}: version {version.number}, active from "
                f"{version.effective_from}, proposed by {version.proposed_by.full_name} and approved by "
                f"{version.approved_by.full_name}; scores for {len(seeded.periods)} quarters, "
                f"{seeded.periods[0]} to {seeded.periods[-1]}."
            )
        out.write("")
        for workspace_name, plaintext in new_keys:
            out.write(f"Read-only API key for {workspace_name}, shown this once (only its digest is stored):")
            out.write(f"  {plaintext}")
            out.write(f"  curl -H 'Authorization: Api-Key {plaintext}' http://127.0.0.1:8000/api/v1/partners/")
            out.write("")
        if not new_keys:
            out.write(
                f"The read-only API key “{DEMO_API_KEY_NAME}” already exists; its secret was shown when it was "
                "created. An administrator can create another under Settings → API keys."
            )
            out.write("")
