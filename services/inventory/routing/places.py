"""Countries as routing needs them, as plain data: the ISO 3166-1 alpha-2 codes (to validate a
location's country and the countries it ships to) and an approximate centre of some countries
(latitude, longitude in degrees), where `nearest` measures a customer abroad from.

The centres are rough geographic centres, not where people live: good enough to tell that
Vienna is nearer to Switzerland than Lisbon is, useless inside a large country (the centre of
the US is in Kansas). Inside the customer's own country, routing compares postal codes instead.
"""

from __future__ import annotations

import math

_ASSIGNED = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ
    BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
    CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
    DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET
    FI FJ FK FM FO FR
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY
    HK HM HN HR HT HU
    ID IE IL IM IN IO IQ IR IS IT
    JE JM JO JP
    KE KG KH KI KM KN KP KR KW KY KZ
    LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ
    NA NC NE NF NG NI NL NO NP NR NU NZ
    OM
    PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA
    RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ
    TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ
    UA UG UM US UY UZ
    VA VC VE VG VI VN VU
    WF WS
    YE YT
    ZA ZM ZW
"""
COUNTRY_CODES: frozenset[str] = frozenset(_ASSIGNED.split())

# (latitude, longitude): the EU's 27, the rest of western Europe, North America, Oceania.
CENTRES: dict[str, tuple[float, float]] = {
    "AT": (47.6, 14.1),
    "BE": (50.6, 4.6),
    "BG": (42.7, 25.3),
    "CY": (35.0, 33.2),
    "CZ": (49.8, 15.5),
    "DE": (51.2, 10.4),
    "DK": (56.0, 10.0),
    "EE": (58.7, 25.5),
    "ES": (40.2, -3.6),
    "FI": (64.5, 26.0),
    "FR": (46.6, 2.4),
    "GR": (39.1, 22.0),
    "HR": (45.1, 15.2),
    "HU": (47.2, 19.5),
    "IE": (53.2, -8.2),
    "IT": (42.8, 12.6),
    "LT": (55.3, 23.9),
    "LU": (49.8, 6.1),
    "LV": (56.9, 24.9),
    "MT": (35.9, 14.4),
    "NL": (52.2, 5.5),
    "PL": (52.1, 19.4),
    "PT": (39.6, -8.0),
    "RO": (45.9, 25.0),
    "SE": (62.0, 15.0),
    "SI": (46.1, 14.8),
    "SK": (48.7, 19.7),
    "GB": (54.0, -2.5),
    "CH": (46.8, 8.2),
    "NO": (61.0, 9.5),
    "IS": (64.9, -18.6),
    "LI": (47.2, 9.55),
    "MC": (43.74, 7.42),
    "AD": (42.5, 1.5),
    "SM": (43.94, 12.46),
    "VA": (41.9, 12.45),
    "US": (39.8, -98.6),
    "CA": (56.1, -106.3),
    "AU": (-25.3, 133.8),
    "NZ": (-41.0, 174.0),
}

EARTH_RADIUS_KM = 6371.0


def is_country(code: str) -> bool:
    return code in COUNTRY_CODES


def centre(country: str | None) -> tuple[float, float] | None:
    return CENTRES.get(country) if country else None


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance between two (latitude, longitude) points."""
    lat1, lon1 = map(math.radians, a)
    lat2, lon2 = map(math.radians, b)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
