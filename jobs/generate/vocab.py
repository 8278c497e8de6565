"""Fixed vocabularies of the synthetic world: tracking plan, names, places, devices.

Everything here is constant data; order matters (indices are drawn by the RNG), so append
rather than reorder if you extend a list — reordering changes every generated tree.
"""

from __future__ import annotations

from typing import NamedTuple


class TaxonomyEntry(NamedTuple):
    """One row of the tracking plan (SPEC §3.5)."""

    v2_name: str
    v1_name: str
    category: str
    feature_key: str


TAXONOMY: tuple[TaxonomyEntry, ...] = (
    TaxonomyEntry("report_viewed", "Report Viewed", "core", "reports"),
    TaxonomyEntry("report_created", "Report Created", "core", "reports"),
    TaxonomyEntry("dashboard_viewed", "Dashboard Viewed", "core", "dashboards"),
    TaxonomyEntry("query_run", "Query Run", "core", "sql_editor"),
    TaxonomyEntry("dashboard_created", "Dashboard Created", "advanced", "dashboards"),
    TaxonomyEntry("alert_created", "Alert Created", "advanced", "alerts"),
    TaxonomyEntry("export_created", "Export Created", "advanced", "exports"),
    TaxonomyEntry("api_key_created", "API Key Created", "advanced", "api"),
    TaxonomyEntry("report_shared", "Report Shared", "collaboration", "sharing"),
    TaxonomyEntry("comment_added", "Comment Added", "collaboration", "comments"),
    TaxonomyEntry("user_invited", "User Invited", "collaboration", "invites"),
    TaxonomyEntry("user_provisioned", "User Provisioned", "admin", "user_management"),
    TaxonomyEntry("user_deprovisioned", "User Deprovisioned", "admin", "user_management"),
    TaxonomyEntry("role_changed", "Role Changed", "admin", "permissions"),
    TaxonomyEntry("permission_reviewed", "Permission Reviewed", "admin", "permissions"),
    TaxonomyEntry("policy_updated", "Policy Updated", "admin", "policies"),
    TaxonomyEntry("sso_configured", "SSO Configured", "admin", "sso"),
    TaxonomyEntry(
        "onboarding_step_completed", "Onboarding Step Completed", "onboarding", "onboarding"
    ),
    TaxonomyEntry("experiment_exposed", "Experiment Exposed", "experiment", "experiments"),
    TaxonomyEntry("sync_completed", "Sync Completed", "system", "integrations"),
    TaxonomyEntry("email_digest_sent", "Email Digest Sent", "system", "notifications"),
)

# Track names that are not in the tracking plan (new app versions ship them first):
# (v2 name, v1 name, property value for feature_key / feature, or "" for none).
UNCATEGORIZED: tuple[tuple[str, str, str], ...] = (
    ("ai_assistant_opened", "AI Assistant Opened", "ai_assistant"),
    ("canvas_zoomed", "Canvas Zoomed", "canvas"),
    ("theme_toggled", "Theme Toggled", ""),
)

ROLES: tuple[str, ...] = ("owner", "admin", "member", "viewer", "billing", "guest")
ADMIN_ROLES: frozenset[int] = frozenset({0, 1})  # indices into ROLES
TIERS: tuple[str, ...] = ("starter", "growth", "strategic")
PLANS: tuple[str, ...] = ("starter", "team", "business", "enterprise")
PLAN_SEAT_PRICE_CENTS: tuple[int, ...] = (1500, 3000, 6000, 9000)
ADDON_PLAN = "analytics-addon"
ADDON_SEAT_PRICE_CENTS = 1200

INDUSTRIES: tuple[str, ...] = (
    "software",
    "financial_services",
    "healthcare",
    "retail",
    "manufacturing",
    "education",
    "media",
    "logistics",
    "energy",
    "public_sector",
    "telecom",
    "hospitality",
)
DEPARTMENTS: tuple[str, ...] = (
    "engineering",
    "finance",
    "marketing",
    "sales",
    "operations",
    "support",
    "product",
    "data",
    "it",
    "hr",
    "legal",
)
REGIONS: tuple[str, ...] = ("NA", "EMEA", "APAC", "LATAM")
REGION_CURRENCY: dict[str, str] = {"NA": "USD", "EMEA": "EUR", "APAC": "USD", "LATAM": "USD"}

COMPANY_WORDS_A: tuple[str, ...] = (
    "Blue",
    "North",
    "Bright",
    "Silver",
    "Iron",
    "Quantum",
    "Granite",
    "Summit",
    "Harbor",
    "Cedar",
    "Atlas",
    "Nova",
    "Polar",
    "Vertex",
    "Lumen",
    "Crescent",
    "Evergreen",
    "Falcon",
    "Golden",
    "Pioneer",
    "Redwood",
    "Sterling",
    "Orbit",
    "Prairie",
    "Coastal",
    "Müller",
    "Nordic",
    "Sakura",
    "Andes",
    "Tasman",
)
COMPANY_WORDS_B: tuple[str, ...] = (
    "Analytics",
    "Logistics",
    "Health",
    "Foods",
    "Robotics",
    "Capital",
    "Labs",
    "Systems",
    "Energy",
    "Media",
    "Retail",
    "Bank",
    "Works",
    "Networks",
    "Pharma",
    "Motors",
    "Studios",
    "Holdings",
    "Telecom",
    "Partners",
)
COMPANY_SUFFIXES: tuple[str, ...] = ("Inc", "Ltd", "GmbH", "LLC", "Group", "KK", "Pty Ltd", "SA")
SUBSIDIARY_WORDS: tuple[str, ...] = (
    "EMEA",
    "APAC",
    "Americas",
    "Germany",
    "France",
    "Japan",
    "India",
    "Brazil",
    "UK",
    "Research",
    "Retail Division",
    "Finance Dept",
    "Platform Team",
    "Data Office",
)

FIRST_NAMES: tuple[str, ...] = (
    "Alice",
    "Bob",
    "Carol",
    "David",
    "Erin",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Karl",
    "Lena",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
    "Rupert",
    "Sybil",
    "Trent",
    "Uma",
    "Victor",
    "Wendy",
    "Xavier",
    "Yvonne",
    "Zoë",
    "José",
    "Jürgen",
    "Priya",
    "Arjun",
    "Ananya",
    "Hiroshi",
    "Yuki",
    "Sakura",
    "Chloé",
    "Björn",
    "Sofía",
    "Mateus",
    "Aroha",
    "Thabo",
    "Fatima",
    "Liam",
    "Noah",
    "Emma",
    "Mia",
    "Lucas",
    "Hannah",
    "Omar",
    "Wei",
)
LAST_NAMES: tuple[str, ...] = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Patel",
    "Sharma",
    "Iyer",
    "Reddy",
    "Tanaka",
    "Suzuki",
    "Satō",
    "Dubois",
    "Martin",
    "Lefèvre",
    "Silva",
    "Santos",
    "Oliveira",
    "Nguyen",
    "Kim",
    "Lee",
    "Chen",
    "O'Brien",
    "Murphy",
    "Kowalski",
    "Nowak",
    "Andersson",
    "Nielsen",
    "van der Berg",
    "García-López",
    "Ndlovu",
    "Al-Sayed",
)

USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:124.0) Gecko/20100101 Firefox/124.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/121.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36 Edg/122.0.0.0",
    "AcmeAnalytics/5.1 (iPhone; iOS 17.3; Scale/3.00)",
    "AcmeAnalytics/4.8 (Linux; Android 14; Pixel 8)",
)
MOBILE_AGENTS = frozenset({5, 6})

LOCALES_BY_TZ_PREFIX: tuple[tuple[str, str], ...] = (
    ("America/Sao_Paulo", "pt-BR"),
    ("America/Toronto", "en-CA"),
    ("America/", "en-US"),
    ("Europe/Berlin", "de-DE"),
    ("Europe/Paris", "fr-FR"),
    ("Europe/Madrid", "es-ES"),
    ("Europe/", "en-GB"),
    ("Africa/", "en-ZA"),
    ("Asia/Tokyo", "ja-JP"),
    ("Asia/Kolkata", "en-IN"),
    ("Asia/Kathmandu", "ne-NP"),
    ("Asia/", "en-SG"),
    ("Australia/", "en-AU"),
    ("Pacific/", "en-NZ"),
)
OTHER_LOCALES: tuple[str, ...] = ("en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "ja-JP")

REGION_BY_TZ_PREFIX: tuple[tuple[str, str], ...] = (
    ("America/Sao_Paulo", "LATAM"),
    ("America/", "NA"),
    ("Europe/", "EMEA"),
    ("Africa/", "EMEA"),
    ("Asia/", "APAC"),
    ("Australia/", "APAC"),
    ("Pacific/", "APAC"),
)

PAGES: tuple[tuple[str, str], ...] = (
    ("/home", "Home"),
    ("/reports", "Reports"),
    ("/reports/{n}", "Report"),
    ("/dashboards", "Dashboards"),
    ("/dashboards/{n}", "Dashboard"),
    ("/sql", "SQL Editor"),
    ("/alerts", "Alerts"),
    ("/settings/profile", "Profile"),
    ("/settings/users", "Users"),
    ("/settings/billing", "Billing"),
    ("/integrations", "Integrations"),
    ("/help", "Help"),
)
PRELOGIN_PAGES: tuple[tuple[str, str], ...] = (
    ("/login", "Log in"),
    ("/pricing", "Pricing"),
    ("/signup", "Sign up"),
    ("/docs/getting-started", "Getting started"),
)

EXPERIMENT_FLAGS: tuple[str, ...] = ("new_nav", "smart_alerts", "pricing_page_v3")
VARIANTS: tuple[str, ...] = ("control", "treatment")
ONBOARDING_STEPS: tuple[str, ...] = (
    "connect_source",
    "invite_team",
    "create_first_report",
    "build_dashboard",
    "set_alert",
)

# Client app versions: (app_version, schema flavour) — flavour 0 = legacy SDK that omits
# schema_version (defaults to 1), 1 = explicit schema_version 1, 2 = schema_version 2.
APP_VERSIONS: tuple[tuple[str, int], ...] = (
    ("3.9.4", 0),
    ("4.8.2", 1),
    ("5.1.0", 2),
)
SERVER_APP_VERSION = "server-2.14.0"

# Values SDKs emit by mistake (SPEC §4.4 block list); used in valid lines next to a real id
# and, alone, in `missing_field` faults.
BLOCKED_IDS: tuple[str, ...] = ("undefined", "null", "None", "0", "anonymous", "[object Object]")
