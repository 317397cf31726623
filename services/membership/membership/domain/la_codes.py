"""The DfE's local authority codes (the first three digits of a LAESTAB) for England, with the names the
register writes in `LA (name)` and the usual other spellings. Shipped with the package (no file is read
at runtime). Codes of authorities that have since been abolished stay listed, because establishments
that closed under them keep their LAESTAB (Bedfordshire 820, Cheshire 875, Dorset 835, Poole 836,
Bournemouth 837, Northamptonshire 928, Cumbria 909).

Source: the DfE's LA code list as published with GIAS (`LA (code)` / `LA (name)` of edubasealldata);
the snapshot in ../shared/data/gias/ holds only the type list and the links file, so the table is kept
here by hand. Welsh authorities (660-681) are not listed: Welsh establishments are not admitted.
"""
from __future__ import annotations

import re

LA_CODES: dict[str, tuple[str, ...]] = {
    "201": ("City of London",), "202": ("Camden",), "203": ("Greenwich",), "204": ("Hackney",),
    "205": ("Hammersmith and Fulham",), "206": ("Islington",), "207": ("Kensington and Chelsea",),
    "208": ("Lambeth",), "209": ("Lewisham",), "210": ("Southwark",), "211": ("Tower Hamlets",),
    "212": ("Wandsworth",), "213": ("Westminster",),
    "301": ("Barking and Dagenham",), "302": ("Barnet",), "303": ("Bexley",), "304": ("Brent",),
    "305": ("Bromley",), "306": ("Croydon",), "307": ("Ealing",), "308": ("Enfield",), "309": ("Haringey",),
    "310": ("Harrow",), "311": ("Havering",), "312": ("Hillingdon",), "313": ("Hounslow",),
    "314": ("Kingston upon Thames",), "315": ("Merton",), "316": ("Newham",), "317": ("Redbridge",),
    "318": ("Richmond upon Thames",), "319": ("Sutton",), "320": ("Waltham Forest",),
    "330": ("Birmingham",), "331": ("Coventry",), "332": ("Dudley",), "333": ("Sandwell",), "334": ("Solihull",),
    "335": ("Walsall",), "336": ("Wolverhampton",),
    "340": ("Knowsley",), "341": ("Liverpool",), "342": ("St. Helens",), "343": ("Sefton",), "344": ("Wirral",),
    "350": ("Bolton",), "351": ("Bury",), "352": ("Manchester",), "353": ("Oldham",), "354": ("Rochdale",),
    "355": ("Salford",), "356": ("Stockport",), "357": ("Tameside",), "358": ("Trafford",), "359": ("Wigan",),
    "370": ("Barnsley",), "371": ("Doncaster",), "372": ("Rotherham",), "373": ("Sheffield",),
    "380": ("Bradford",), "381": ("Calderdale",), "382": ("Kirklees",), "383": ("Leeds",), "384": ("Wakefield",),
    "390": ("Gateshead",), "391": ("Newcastle upon Tyne",), "392": ("North Tyneside",),
    "393": ("South Tyneside",), "394": ("Sunderland",),
    "420": ("Isles of Scilly",),
    "800": ("Bath and North East Somerset",), "801": ("Bristol, City of",), "802": ("North Somerset",),
    "803": ("South Gloucestershire",), "805": ("Hartlepool",), "806": ("Middlesbrough",),
    "807": ("Redcar and Cleveland",), "808": ("Stockton-on-Tees",), "810": ("Kingston upon Hull, City of", "Hull"),
    "811": ("East Riding of Yorkshire",), "812": ("North East Lincolnshire",), "813": ("North Lincolnshire",),
    "815": ("North Yorkshire",), "816": ("York",),
    "820": ("Bedfordshire",), "821": ("Luton",), "822": ("Bedford",), "823": ("Central Bedfordshire",),
    "825": ("Buckinghamshire", "Bucks"), "826": ("Milton Keynes",), "830": ("Derbyshire",), "831": ("Derby",),
    "835": ("Dorset",), "836": ("Poole",), "837": ("Bournemouth",), "838": ("Dorset",),
    "839": ("Bournemouth, Christchurch and Poole", "BCP"),
    "840": ("County Durham", "Durham"), "841": ("Darlington",), "845": ("East Sussex",),
    "846": ("Brighton and Hove",), "850": ("Hampshire",), "851": ("Portsmouth",), "852": ("Southampton",),
    "855": ("Leicestershire",), "856": ("Leicester",), "857": ("Rutland",), "860": ("Staffordshire",),
    "861": ("Stoke-on-Trent",), "865": ("Wiltshire",), "866": ("Swindon",), "867": ("Bracknell Forest",),
    "868": ("Windsor and Maidenhead",), "869": ("West Berkshire",), "870": ("Reading",), "871": ("Slough",),
    "872": ("Wokingham",), "873": ("Cambridgeshire",), "874": ("Peterborough",), "875": ("Cheshire",),
    "876": ("Halton",), "877": ("Warrington",), "878": ("Devon",), "879": ("Plymouth",), "880": ("Torbay",),
    "881": ("Essex",), "882": ("Southend-on-Sea",), "883": ("Thurrock",), "884": ("Herefordshire, County of",),
    "885": ("Worcestershire",), "886": ("Kent",), "887": ("Medway",), "888": ("Lancashire",),
    "889": ("Blackburn with Darwen",), "890": ("Blackpool",), "891": ("Nottinghamshire",),
    "892": ("Nottingham",), "893": ("Shropshire",), "894": ("Telford and Wrekin",), "895": ("Cheshire East",),
    "896": ("Cheshire West and Chester",), "908": ("Cornwall",), "909": ("Cumbria",),
    "916": ("Gloucestershire",), "919": ("Hertfordshire",), "921": ("Isle of Wight",), "925": ("Lincolnshire",),
    "926": ("Norfolk",), "928": ("Northamptonshire",), "929": ("Northumberland",), "931": ("Oxfordshire",),
    "933": ("Somerset",), "935": ("Suffolk",), "936": ("Surrey",), "937": ("Warwickshire",),
    "938": ("West Sussex",), "940": ("North Northamptonshire",), "941": ("West Northamptonshire",),
    "942": ("Cumberland",), "943": ("Westmorland and Furness",),
}

# "Buckinghamshire Council", "London Borough of Camden", "Bristol, City of" name the same authority as the
# register's short name; these words carry no identity.
_NOISE = re.compile(r"\b(london borough of|royal borough of|metropolitan borough of|borough of|city of|county of|"
                    r"metropolitan borough council|borough council|county council|city council|council)\b")
_CODE_FORM = re.compile(r"^la ?([0-9]{3})\Z")


def normalise(name: str) -> str:
    """A comparable form of an authority's name: case, punctuation, '&' and 'Council'-like words ignored."""
    text = (name or "").lower().replace("&", " and ").replace("saint ", "st ")
    text = re.sub(r"[.,()'-]", " ", text)
    text = _NOISE.sub(" ", text)
    return " ".join(text.split())


BY_NAME: dict[str, str] = {}
for _code, _names in LA_CODES.items():
    for _name in _names:
        BY_NAME.setdefault(normalise(_name), _code)
# "Dorset" alone means today's authority (838); its pre-2019 code 835 still matches the name (see `matches`).
BY_NAME["dorset"] = "838"


def code_of(local_authority: str) -> str | None:
    """The DfE LA code named by `local_authority` (a name in any usual spelling, or `LA 825`); None if unknown."""
    text = " ".join((local_authority or "").lower().split())
    found = _CODE_FORM.match(text)
    if found:
        return found.group(1) if found.group(1) in LA_CODES else None
    return BY_NAME.get(normalise(local_authority))


def name_of(code: str) -> str | None:
    """The register's name of LA `code`, or None if it is not an English DfE LA code."""
    names = LA_CODES.get(code)
    return names[0] if names else None


def matches(code: str, local_authority: str) -> bool:
    """True when `local_authority` names the authority whose DfE code is `code` (any of its spellings)."""
    if code not in LA_CODES:
        return False
    wanted = {normalise(n) for n in LA_CODES[code]}
    return normalise(local_authority) in wanted or code_of(local_authority) == code
