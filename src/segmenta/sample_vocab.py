"""Small vocabularies with weights for the sample CRM (see :mod:`segmenta.sample`).

Each entry is ``(value, weight)``; weights need not sum to one. Values are chosen with
numpy over these short lists, so the generator never loops over rows in Python.
"""

from __future__ import annotations

Weighted = tuple[tuple[str, float], ...]

FIRST_NAMES = (  # noqa: SIM905 - compact word lists
    "James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara Richard Susan Joseph "
    "Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Betty Mark Margaret Paul Sandra Steven "
    "Ashley Andrew Emily Oliver Olivia Harry Amelia George Isla Jack Ava Noah Mia Leo Sophie Lukas Anna Finn Emma "
    "Jonas Lena Paul Hannah Felix Laura Maximilian Julia Lucas Chloe Hugo Manon Louis Camille Jules Ines Arthur Lea "
    "Gabriel Louise Raphael Zoe Daan Sanne Sem Fleur Bram Lotte Lars Eva Hugo Lucia Pablo Martina Alejandro Sofia "
    "Javier Carmen Marco Giulia Alessandro Francesca Lorenzo Chiara Matteo Sara Giovanni Elena Liam Aoife Sean "
    "Niamh Erik Astrid Nils Ingrid Piotr Zofia Jakub Maja Tomas Ana Mateo Valentina Ethan Grace Ryan Megan Kevin "
    "Rachel Brian Nicole"
).split()

LAST_NAMES = (  # noqa: SIM905 - compact word lists
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson "
    "Anderson Thomas Taylor Moore Jackson Martin Lee Thompson White Harris Clark Lewis Robinson Walker Young Allen "
    "King Wright Scott Hill Green Adams Baker Nelson Carter Mitchell Evans Turner Collins Murphy Cook Morgan Bell "
    "Cooper Ward Hughes Muller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter "
    "Klein Wolf Neumann Bernard Dubois Durand Lefebvre Moreau Laurent Simon Michel Leroy Roux Fontaine Girard "
    "Bonnet Dupont Lambert DeJong Jansen DeVries VanDijk Bakker Visser Smit Meijer Mulder Bos Vos Peters Hendriks "
    "Fernandez Sanchez Perez Gomez Diaz Moreno Alvarez Romero Navarro Torres Rossi Russo Ferrari Esposito Bianchi "
    "Romano Colombo Ricci Marino Greco Bruno Gallo Conti Costa Giordano OBrien Kelly Byrne Ryan Walsh Andersson "
    "Johansson Karlsson Nilsson Eriksson Larsson Nowak Kowalski Wisniewski Wojcik Novak Silva Santos Ferreira"
).split()

EMAIL_DOMAINS: Weighted = (
    ("gmail.com", 34),
    ("outlook.com", 14),
    ("yahoo.com", 9),
    ("hotmail.com", 8),
    ("icloud.com", 6),
    ("proton.me", 2),
    ("gmx.de", 4),
    ("web.de", 3),
    ("orange.fr", 3),
    ("free.fr", 2),
    ("ziggo.nl", 2),
    ("libero.it", 2),
    ("btinternet.com", 2),
    ("example.com", 3),
    ("acme.io", 2),
    ("contoso.com", 2),
    ("fabrikam.com", 2),
)

# Mostly title case, as people type them into a CRM, with a few lower/upper-case entries.
JOB_TITLES: Weighted = (
    ("Marketing Manager", 6),
    ("Sales Manager", 6),
    ("Account Manager", 5),
    ("Product Manager", 4),
    ("Project Manager", 4),
    ("Office Manager", 2),
    ("General Manager", 2),
    ("IT Manager", 2),
    ("HR Manager", 2),
    ("Operations Manager", 2),
    ("Senior Marketing Manager", 1.5),
    ("Regional Sales Manager", 1.5),
    ("marketing manager", 0.6),
    ("SALES MANAGER", 0.3),
    ("CEO", 2),
    ("CFO", 1),
    ("CTO", 1),
    ("COO", 0.8),
    ("Founder", 1.2),
    ("Managing Director", 1.5),
    ("Owner", 2),
    ("VP Sales", 1),
    ("VP Marketing", 1),
    ("Head of Marketing", 1.2),
    ("Head of Sales", 1.2),
    ("Director of Operations", 1),
    ("Software Engineer", 6),
    ("Senior Software Engineer", 3),
    ("Data Analyst", 3),
    ("Data Scientist", 2),
    ("DevOps Engineer", 1.5),
    ("software engineer", 0.5),
    ("Consultant", 4),
    ("Accountant", 3),
    ("Financial Analyst", 2),
    ("Sales Representative", 5),
    ("Customer Success Specialist", 2),
    ("Marketing Specialist", 3),
    ("Designer", 2),
    ("Teacher", 3),
    ("Nurse", 3),
    ("Physician", 1),
    ("Pharmacist", 1),
    ("Buyer", 2),
    ("Procurement Officer", 1.5),
    ("Administrative Assistant", 3),
    ("Executive Assistant", 1.5),
    ("Student", 3),
    ("Retired", 2),
    ("Engineer", 3),
)

TIERS: Weighted = (("Gold", 10), ("Silver", 28), ("Bronze", 62))

# (code, weight, phone prefix, cities most populous first)
COUNTRIES: tuple[tuple[str, float, str, tuple[str, ...]], ...] = (
    ("US", 30, "+1", ("New York", "Los Angeles", "Chicago", "Houston", "Seattle")),
    ("UK", 14, "+44", ("London", "Manchester", "Birmingham", "Leeds", "Glasgow")),
    ("DE", 12, "+49", ("Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt")),
    ("FR", 10, "+33", ("Paris", "Marseille", "Lyon", "Toulouse", "Nice")),
    ("NL", 6, "+31", ("Amsterdam", "Rotterdam", "The Hague", "Utrecht", "Eindhoven")),
    ("ES", 6, "+34", ("Madrid", "Barcelona", "Valencia", "Seville", "Bilbao")),
    ("IT", 6, "+39", ("Rome", "Milan", "Naples", "Turin", "Bologna")),
    ("CA", 4, "+1", ("Toronto", "Montreal", "Vancouver", "Calgary", "Ottawa")),
    ("AU", 3, "+61", ("Sydney", "Melbourne", "Brisbane", "Perth", "Adelaide")),
    ("BE", 2, "+32", ("Brussels", "Antwerp", "Ghent", "Liege", "Bruges")),
    ("SE", 2, "+46", ("Stockholm", "Gothenburg", "Malmo", "Uppsala", "Vasteras")),
    ("CH", 2, "+41", ("Zurich", "Geneva", "Basel", "Bern", "Lausanne")),
    ("IE", 1.5, "+353", ("Dublin", "Cork", "Galway", "Limerick", "Waterford")),
    ("PL", 1.5, "+48", ("Warsaw", "Krakow", "Lodz", "Wroclaw", "Poznan")),
)
CITY_WEIGHTS = (0.4, 0.25, 0.15, 0.12, 0.08)

INDUSTRIES: Weighted = (("Retail", 25), ("Tech", 22), ("Finance", 15), ("Health", 13), ("Manufacturing", 15), ("Education", 10))

COMPANY_WORDS = (  # noqa: SIM905 - compact word lists
    "Blue Red Green Silver Golden North South East West Bright Swift Prime Summit Peak River Lake Stone Oak Pine "
    "Cedar Iron Star Sun Moon Atlas Nova Vertex Apex Quantum Pioneer Harbor Bridge Crown Falcon Eagle Lion Tiger "
    "Maple Willow"
).split()
COMPANY_NOUNS = (  # noqa: SIM905 - compact word lists
    "Systems Solutions Labs Group Partners Industries Holdings Foods Health Capital Digital Retail Logistics Energy "
    "Analytics Software Networks Media Works Studio Clinic Academy Motors Textiles Robotics Foods Pharma Finance "
    "Goods"
).split()
COMPANY_SUFFIXES: Weighted = (("", 30), ("Inc", 20), ("Ltd", 15), ("GmbH", 10), ("SA", 6), ("BV", 5), ("SpA", 4), ("LLC", 10))

INTERESTS: Weighted = (("golf", 8), ("travel", 30), ("wine", 15), ("tech", 20), ("food", 22), ("fitness", 18))
INTEREST_COUNTS = (0.34, 0.3, 0.2, 0.11, 0.05)  # probability of 0, 1, 2, 3, 4 interests

LEAD_SOURCES: Weighted = (
    ("Web", 35),
    ("Referral", 15),
    ("Trade Show", 10),
    ("Advertisement", 12),
    ("Partner", 8),
    ("Cold Call", 6),
    ("Webinar", 9),
    ("Social Media", 5),
)
LEAD_SUBJECTS = (
    "Interested in pricing",
    "Demo request",
    "Bulk order enquiry",
    "Partnership opportunity",
    "Renewal question",
    "Upgrade to premium",
    "Request for proposal",
    "Product information",
    "Trial extension",
    "Event follow-up",
)
RATINGS: Weighted = (("Hot", 15), ("Warm", 35), ("Cold", 50))

CHANNELS: Weighted = (("web", 55), ("store", 30), ("phone", 15))

INTERACTION_TYPES: Weighted = (
    ("email_sent", 44),
    ("email_open", 24),
    ("email_click", 6),
    ("web_visit", 22),
    ("form_submitted", 4),
)
PAGES: Weighted = (
    ("/", 20),
    ("/products", 12),
    ("/products/running-shoes", 6),
    ("/products/rain-jacket", 5),
    ("/products/smart-watch", 5),
    ("/pricing", 8),
    ("/cart", 7),
    ("/checkout", 3),
    ("/blog/summer-travel-tips", 4),
    ("/blog/golf-season", 2),
    ("/blog/wine-pairing", 2),
    ("/events", 4),
    ("/account", 6),
    ("/support", 5),
    ("/contact", 3),
    ("/newsletter", 3),
)
FORM_PAGES: Weighted = (("/contact", 30), ("/newsletter", 35), ("/demo-request", 15), ("/events", 20))
CAMPAIGNS = 48  # email ids 1001 .. 1048

EVENT_CATEGORIES: Weighted = (("Webinar", 55), ("Conference", 20), ("Workshop", 25))
EVENT_TOPICS = (
    "Product Launch",
    "Spring Collection",
    "Data & AI",
    "Customer Summit",
    "Golf Masterclass",
    "Wine Tasting",
    "Travel Show",
    "Fitness Challenge",
    "Partner Day",
    "Marketing Trends",
    "Security Briefing",
    "Holiday Preview",
)
