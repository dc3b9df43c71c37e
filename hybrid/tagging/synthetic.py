"""A generated airline-booking corpus: ATIS-style slot filling and intents, no download.

Each utterance comes from one of 76 templates ("arrive taipei on november second": which
words fill which slot), 15 of them a flight described by an origin, a destination and up to
four other constraints in any order. Tags are BIO over ATIS slot names; each utterance has
one of eight intents. The corpus is learnable, with the traits that separate a per-token
softmax tagger from a CRF on the same encoder:

* multi-word values (``new york``, ``american airlines``, ``twenty second``, ``rental car``),
  and a long tail of rare cities and airlines, many of several words;
* the same word filling different slots by context: a city after ``from`` is
  ``fromloc.city_name``, after ``to`` or ``arrive in`` ``toloc.city_name``, before
  ``airport`` part of an airport name; a date after ``leaving`` (or with no verb) is
  ``depart_date.*``, after ``arriving`` ``arrive_date.*``, after ``returning``
  ``return_date.*``; the deciding word may follow the value (``on monday i want to arrive
  in denver``); ``first`` is a day, a class or a flight modifier; ``washington`` is a city
  or a state;
* adjacent slots of the same type that only a ``B-`` tag separates: city lists
  (``from boston denver or dallas``) and ``early morning``, which ATIS tags as two
  ``period_of_day`` slots, while ``late morning`` is one;
* a little genuine ambiguity, as in ATIS: a date or time right after ``arriving in <city>``
  is sometimes the arrival's and sometimes (a bare date) the departure's;
* optional fillers and pauses (``okay``, ``uh``, ``please``, ``thank you``) and optional slots.

Label noise (a slot span relabelled with another type, an intent with another intent) is
off by default.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from functools import cache, partial
from itertools import accumulate, islice

from .corpus import Sentence

SYNTHETIC_NOTICE = (
    "Note: the 'synthetic' corpus is generated airline-booking text (ATIS-style slots and "
    "intents from templates), not real user queries; its scores do not compare with ATIS."
)

INTENTS = (
    "flight",
    "airfare",
    "ground_service",
    "airline",
    "flight_time",
    "aircraft",
    "abbreviation",
    "distance",
)
"""The intents, in a fixed order."""

_DATE_ROLES = ("depart_date", "arrive_date", "return_date")
_TIME_ROLES = ("depart_time", "arrive_time")

SLOT_TYPES = (
    "fromloc.city_name",
    "toloc.city_name",
    "stoploc.city_name",
    "city_name",
    "fromloc.state_name",
    "toloc.state_name",
    "airport_name",
    "fromloc.airport_name",
    "toloc.airport_name",
    *(
        f"{role}.{part}"
        for role in _DATE_ROLES
        for part in ("day_name", "month_name", "day_number")
    ),
    "depart_date.today_relative",
    "depart_time.start_time",
    "depart_time.end_time",
    *(
        f"{role}.{part}"
        for role in _TIME_ROLES
        for part in ("period_of_day", "time_relative", "time")
    ),
    "airline_name",
    "airline_code",
    "fare_basis_code",
    "class_type",
    "round_trip",
    "cost_relative",
    "fare_amount",
    "flight_stop",
    "flight_mod",
    "meal_description",
    "transport_type",
    "flight_number",
    "flight_time",
    "or",
)
"""The slot types (tags are ``O``, ``B-<type>`` and ``I-<type>``), in a fixed order."""

# Cities from common to rare (drawn with Zipf weights, so that the rare ones, many of them
# several words long, are often unseen in a small training split), with the state where the
# utterance may name it ("portland oregon"; "washington" and "new york" are both).
_CITIES = (
    "boston|massachusetts", "denver|colorado", "dallas|texas", "atlanta|georgia",
    "pittsburgh|pennsylvania", "baltimore|maryland", "san francisco|california", "washington|",
    "philadelphia|pennsylvania", "oakland|california", "chicago|illinois", "new york|new york",
    "taipei|", "seattle|washington", "houston|texas", "los angeles|california", "miami|florida",
    "phoenix|arizona", "detroit|michigan", "orlando|florida", "las vegas|nevada",
    "salt lake city|utah", "san diego|california", "st. louis|missouri", "kansas city|missouri",
    "dallas fort worth|texas", "san jose|california", "newark|new jersey", "tokyo|",
    "minneapolis|minnesota", "st. paul|minnesota", "memphis|tennessee", "nashville|tennessee",
    "cleveland|ohio", "cincinnati|ohio", "columbus|ohio", "indianapolis|indiana",
    "milwaukee|wisconsin", "charlotte|north carolina", "tampa|florida", "hong kong|",
    "st. petersburg|florida", "fort lauderdale|florida", "long beach|california",
    "burbank|california", "ontario|california", "westchester county|new york",
    "tacoma|washington", "montreal|", "toronto|", "vancouver|", "portland|oregon",
    "sacramento|california", "san antonio|texas", "austin|texas", "el paso|texas",
    "albuquerque|new mexico", "santa fe|new mexico", "tucson|arizona", "boise|idaho",
    "spokane|washington", "anchorage|alaska", "honolulu|hawaii", "new orleans|louisiana",
    "baton rouge|louisiana", "little rock|arkansas", "oklahoma city|oklahoma", "tulsa|oklahoma",
    "omaha|nebraska", "des moines|iowa", "cedar rapids|iowa", "sioux falls|south dakota",
    "rapid city|south dakota", "fargo|north dakota", "green bay|wisconsin",
    "grand rapids|michigan", "buffalo|new york", "rochester|new york", "albany|new york",
    "hartford|connecticut", "providence|rhode island", "burlington|vermont",
    "richmond|virginia", "norfolk|virginia", "raleigh|north carolina",
    "charleston|south carolina", "savannah|georgia", "jacksonville|florida",
    "palm springs|california", "santa barbara|california", "colorado springs|colorado",
    "jersey city|new jersey", "atlantic city|new jersey", "kaohsiung|", "seoul|", "osaka|",
    "manila|", "singapore|", "london|", "paris|", "frankfurt|", "amsterdam|", "san juan|",
    "mexico city|", "panama city|", "rio de janeiro|", "buenos aires|", "kuala lumpur|",
    "tel aviv|", "new delhi|", "ho chi minh city|",
)  # fmt: skip
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = (
    ("january", 31), ("february", 29), ("march", 31), ("april", 30), ("may", 31), ("june", 30),
    ("july", 31), ("august", 31), ("september", 30), ("october", 31), ("november", 30),
    ("december", 31),
)  # fmt: skip
_ORDINALS = (
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
    "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
    "seventeenth", "eighteenth", "nineteenth", "twentieth",
)  # fmt: skip
_DAY_NUMBERS = (
    *_ORDINALS,
    *(f"twenty {ordinal}" for ordinal in _ORDINALS[:9]),
    "thirtieth",
    "thirty first",
)
_PERIODS = ("morning", "afternoon", "evening", "night")
_AIRLINES = (
    "american airlines", "united airlines", "delta", "american", "united", "continental",
    "us air", "delta airlines", "northwest", "continental airlines", "china airlines",
    "eva air", "alaska airlines", "northwest airlines", "midwest express", "america west",
    "southwest airlines", "trans world airlines", "air canada", "lufthansa", "japan airlines",
    "korean air", "british airways", "cathay pacific", "singapore airlines", "tower air",
    "canadian airlines international", "sun country airlines",
)  # fmt: skip
_AIRPORTS = (
    "logan airport", "kennedy airport", "la guardia", "love field", "o'hare", "dulles airport",
    "general mitchell international", "taoyuan airport",
)  # fmt: skip

# Plain value lists, one slot type each.
_VALUES = {
    "airline": ("airline_name", _AIRLINES),
    "airline_code": ("airline_code", ("ua", "aa", "dl", "us", "co", "nw", "twa", "ci")),
    "fare_code": ("fare_basis_code", ("qx", "qo", "f", "h", "y", "yn", "bh")),
    "class": ("class_type", ("first class", "business class", "coach", "economy class")),
    "round_trip": ("round_trip", ("round trip", "one way")),
    "cost_sup": ("cost_relative", ("cheapest", "lowest", "least expensive", "most expensive")),
    "stops": ("flight_stop", ("nonstop", "direct", "one stop")),
    "mod": ("flight_mod", ("earliest", "latest", "first", "last")),
    "meal": ("meal_description", ("breakfast", "lunch", "dinner", "snack")),
    "transport": ("transport_type", ("taxi", "limousine", "rental car", "bus", "car rental")),
    "ftime": ("flight_time", ("departure time", "arrival time", "schedule", "flight times")),
    "or": ("or", ("or",)),
}

# Phrases outside any slot, from common to rare (drawn with Zipf weights); an empty phrase
# makes the filler optional.
_POOLS = {
    "opener": ("", "", "okay", "yes", "um", "hi", "well", "hello", "uh", "okay um", "yes please",
               "good morning", "alright"),
    "closer": ("", "", "please", "thank you", "thanks", "if possible", "for me", "please thanks",
               "thank you very much", "if you can"),
    "show": (
        "show me", "list", "what are", "i would like", "give me", "i need", "find", "tell me",
        "please show me", "can you show me", "please list", "i'd like to see", "could you list",
        "i want to see", "display", "can you give me", "i'm looking for", "let me see",
        "could you please find", "what about",
    ),
    "the": ("", "the", "all", "all the", "any", "all of the", "some"),
    "want": ("i want", "i would like", "i need", "i'd like", "we want", "we would like", "we need",
             "i'm planning", "my wife and i want"),
    "fly": ("fly", "go", "travel", "get", "make a trip"),
    "leave": ("leave", "depart from", "fly out of", "get out of", "leave from", "start from"),
    "leaving": ("leaving", "departing", "that leave", "which leave", "that depart", "which depart",
                "that departs", "taking off", "going out"),
    "arrive": ("arrive", "arrive in", "get to", "be in", "arrive at", "land in", "reach",
               "get into", "end up in"),
    "arriving": ("arriving", "that arrive", "which arrive", "landing", "that land", "getting in",
                 "that get in"),
    "returning": ("returning", "and returning", "coming back", "flying back", "and coming back",
                  "with the return", "and back", "getting back"),
    "via": ("via", "stopping in", "that stop in", "with a stopover in", "connecting in",
            "through", "with a stop in", "by way of"),
    "serving": ("that serve", "with", "serving", "that offers", "which have"),
    "pause": ("uh", "um", "and", "and uh", "also", "i mean"),
}  # fmt: skip

# A flight described by its origin, its destination and up to four other constraints, in any
# order (same notation as the templates below). A bare date or time is the departure's, as in
# ATIS; after "arriving in <city>" it may also be the arrival's: both readings occur.
_CONSTRAINTS = {
    "origin": (
        "from {from}", "leaving {from}", "out of {from}", "departing {from}",
        "departing from {from}", "that leave {from}", "originating in {from}",
        "from {from_airport}", "out of {from_airport}", "leaving {from_airport}",
    ),
    "destination": (
        "to {to}", "going to {to}", "arriving in {to}", "into {to}", "that go to {to}",
        "landing in {to}", "flying into {to}", "arriving in {to} {arr_date}",
        "arriving in {to} {arr_time}", "into {to_airport}", "to {to_airport}",
        "arriving at {to_airport}",
    ),
    "dep_date": ("{dep_date}", "<leaving> {dep_date}"),
    "dep_time": ("{dep_time}", "<leaving> {dep_time}"),
    "dep_window": ("{window}", "<leaving> {window}"),
    "arr_date": ("<arriving> {arr_date}",),
    "arr_time": ("<arriving> {arr_time}", "that get there {arr_time}", "that get in {arr_time}"),
    "ret_date": ("<returning> {ret_date}",),
    "airline": ("on {airline}", "with {airline}", "flying {airline}"),
    "stop": ("<via> {stop}",),
    "meal": ("<serving> {meal}",),
    "class": ("in {class}",),
    "stops": ("{stops}",),
    "round_trip": ("{round_trip}",),
    "fare": ("for {fare_cap}", "{fare_cap}", "costing {fare_cap}"),
}  # fmt: skip
_EXTRAS = tuple(kind for kind in _CONSTRAINTS if kind not in ("origin", "destination"))

# ``{name}``: slot value(s); ``<name>``: a filler phrase; a trailing ``?`` makes a slot
# optional; any other token is a literal word outside every slot.
_TEMPLATES = {
    "flight": (
        "<show> <the> flights from {from} to {to} {dep_date}? {dep_time}?",
        "<show> <the> flights from {from} to {to} <leaving> {dep_date} {dep_time}?",
        "<want> to <fly> from {from} to {to} {dep_date}? {dep_time}?",
        "<want> to <arrive> {to} {arr_date}",
        "arrive {to} {arr_date}",
        "<want> to <leave> {from} {dep_date}",
        "leave {from} {dep_date}",
        "<want> to <leave> {from} {dep_date} and <arrive> {to} {arr_time}",
        "<show> <the> flights from {from} to {to} <arriving> {arr_date} {arr_time}?",
        "<show> {round_trip} flights from {from} to {to} <leaving> {dep_date} <returning> "
        "{ret_date}",
        "<want> a {round_trip} ticket from {from} to {to} <returning> {ret_date}",
        "<show> {stops} flights from {from} to {to} {dep_time}?",
        "<show> <the> flights from {from} to {to} <via> {stop}",
        "<show> {airline} flights from {from} to {to} {dep_date}?",
        "<show> <the> flights on {airline} from {from} to {to} <arriving> {arr_time}",
        "what is the {mod} flight from {from} to {to} {dep_date}?",
        "<show> <the> flights from {from} to {to} {or} {to}",
        "<show> <the> flights to {to} from {from} {from} {or} {from}",
        "<show> <the> flights from {from} to either {to} {to} {or} {to}",
        "{from} to {to} {dep_date}? {dep_time}?",
        "<show> <the> flights from {from} to {to} <serving> {meal}",
        "<show> <the> flights between {from} and {to} {dep_date}? {dep_time}?",
        "<show> <the> flights leaving {from} {dep_time} and <arriving> in {to} {arr_time}",
        "i need to be in {to} {arr_time}",
        "on {dep_day} what flights <leave> {from} for {to}",
        "on {arr_day} <want> to <arrive> {to} {arr_time}?",
        "<want> to fly {airline} from {from} to {to} and return {ret_date}",
        "do you have any {class} seats from {from} to {to} {dep_date}?",
        "<show> the {mod} flight from {from} <arriving> in {to} {arr_date}",
        "<show> <the> flights from {from} {dep_date} <arriving> in {to} {arr_time}",
        "on {dep_day} <want> to <leave> {from}",
        "on {ret_day} <want> to fly back to {to}",
        "on {dep_day} {dep_time}? <show> <the> flights {constraints}",
        "<show> <the> flights {constraints}",
        "<want> a flight {constraints}",
        "are there any flights {constraints}",
        "<show> the {mod} flight {constraints}",
        "<want> to <fly> {constraints}",
        "do you have any flights {constraints}",
        "what flights do you have {constraints}",
        "{constraints}",
    ),
    "airfare": (
        "what is the {cost_sup} fare from {from} to {to} {dep_date}?",
        "<show> {round_trip} fares from {from} to {to}",
        "how much is a {class} ticket from {from} to {to}",
        "<show> fares from {from} to {to} {fare_cap}",
        "how much does a {round_trip} ticket on {airline} from {from} to {to} cost",
        "how much does it cost to <fly> from {from} to {to} {dep_date}",
        "<show> the fares {constraints}",
        "what is the {cost_sup} fare {constraints}",
        "how much is a ticket {constraints}",
        "<show> the {cost_sup} {round_trip} fare from {from} to {to} <leaving> {dep_date} "
        "<returning> {ret_date}",
    ),
    "ground_service": (
        "what ground transportation is available in {city}",
        "<want> a {transport} in {city}",
        "how do i get from {airport} to downtown",
        "is there {transport} service at {airport}",
        "what {transport} services are there in {city}",
    ),
    "airline": (
        "which airlines fly from {from} to {to}",
        "what airlines have {stops} flights from {from} to {to}",
        "<show> the airlines that serve {city}",
        "which airline has the {mod} flight from {from} to {to} {dep_date}?",
        "which airlines have flights {constraints}",
    ),
    "flight_time": (
        "what time does the {mod} flight from {from} to {to} leave",
        "what is the {ftime} of {airline} flight {flight_no}",
        "<show> the {ftime} for flights from {from} to {to} {dep_date}",
        "when does {airline} flight {flight_no} arrive in {to}",
        "what are the {ftime} of flights {constraints}",
    ),
    "aircraft": (
        "what type of aircraft is used on {airline} flight {flight_no}",
        "what kind of plane flies from {from} to {to} {dep_time}",
        "what aircraft does {airline} use from {from} to {to}",
        "what aircraft is used on flights {constraints}",
    ),
    "abbreviation": (
        "what does fare code {fare_code} mean",
        "what airline is {airline_code}",
        "what does {airline_code} stand for",
    ),
    "distance": (
        "how far is {airport} from downtown",
        "how far is the airport from downtown {city}",
        "what is the distance from {from} to {to}",
    ),
}
_INTENT_WEIGHTS = (0.46, 0.14, 0.09, 0.08, 0.07, 0.06, 0.05, 0.05)

_Piece = tuple[tuple[str, ...], str | None]  # words and their slot type (None: outside)


@cache
def _zipf(count: int) -> tuple[float, ...]:
    """Cumulative Zipf weights (exponent 1) of ``count`` values listed from common to rare."""
    return tuple(accumulate(1.0 / rank for rank in range(1, count + 1)))


class _Draw:
    """The random source of one corpus and the cities already used in the current utterance."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.cities: list[str] = []

    def city(self) -> tuple[str, str]:
        """A city not yet used in the utterance, and its state (``""`` if none)."""
        while True:
            city, _, state = self.common_first(_CITIES).partition("|")
            if city not in self.cities:
                self.cities.append(city)
                return city, state

    def common_first(self, values: tuple[str, ...]) -> str:
        """One of ``values``, listed from common to rare, with Zipf weights."""
        return self.rng.choices(values, cum_weights=_zipf(len(values)))[0]


def _piece(phrase: str, slot: str | None) -> _Piece:
    return tuple(phrase.split()), slot


def _city(draw: _Draw, loc: str) -> list[_Piece]:
    """A city (slot ``<loc>city_name``); after an origin or destination, now and then its state."""
    city, state = draw.city()
    pieces = [_piece(city, f"{loc}city_name")]
    if state and loc in ("fromloc.", "toloc.") and draw.rng.random() < 0.15:
        pieces.append(_piece(state, f"{loc}state_name"))
    return pieces


def _value(draw: _Draw, slot: str, values: tuple[str, ...]) -> list[_Piece]:
    return [_piece(draw.common_first(values), slot)]


def _day(draw: _Draw, role: str) -> list[_Piece]:
    """A calendar day without its preposition: ``monday``, ``november second``, ``the
    second of november``."""
    rng = draw.rng
    kind = rng.randrange(3)
    if kind == 0:
        return [_piece(rng.choice(_DAY_NAMES), f"{role}.day_name")]
    name, days = rng.choice(_MONTHS)
    month = _piece(name, f"{role}.month_name")
    number = _piece(rng.choice(_DAY_NUMBERS[:days]), f"{role}.day_number")
    if kind == 1:
        return [month, number]
    return [_piece("the", None), number, _piece("of", None), month]


def _date(draw: _Draw, role: str) -> list[_Piece]:
    """``on`` and a day; a departure may also be ``tomorrow`` or a bare day name."""
    if role == "depart_date":
        u = draw.rng.random()
        if u < 0.2:
            relative = draw.rng.choice(("today", "tomorrow", "the day after tomorrow"))
            return [_piece(relative, "depart_date.today_relative")]
        if u < 0.3:
            return [_piece(draw.rng.choice(_DAY_NAMES), "depart_date.day_name")]
        if u < 0.35:
            first, second = draw.rng.sample(_DAY_NAMES, 2)
            return [
                _piece("on", None),
                _piece(first, "depart_date.day_name"),
                _piece("or", "or"),
                _piece(second, "depart_date.day_name"),
            ]
    return [_piece("on", None), *_day(draw, role)]


def _clock(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return rng.choice(("noon", "midnight"))
    return f"{rng.randint(1, 12)} {rng.choice(('am', 'pm'))}"


def _time(draw: _Draw, role: str) -> list[_Piece]:
    """A time of day with its preposition: ``in the early morning``, ``before 9 am``."""
    rng = draw.rng
    period = f"{role}.period_of_day"
    kind = rng.randrange(6)  # 4 and 5: a relative time
    if kind == 0:
        return [_piece("in the", None), _piece(rng.choice(_PERIODS), period)]
    if kind == 1:  # ATIS tags "early" and the period as two slots of the same type...
        return [
            _piece("in the", None),
            _piece("early", period),
            _piece(rng.choice(_PERIODS), period),
        ]
    if kind == 2:  # ... but "late afternoon" as one.
        return [_piece("in the", None), _piece(f"late {rng.choice(_PERIODS)}", period)]
    if kind == 3:
        return [_piece("at", None), _piece(_clock(rng), f"{role}.time")]
    relatives = (
        ("before", "after", "around", "by")
        if role == "arrive_time"
        else ("before", "after", "around")
    )
    return [
        _piece(rng.choice(relatives), f"{role}.time_relative"),
        _piece(_clock(rng), f"{role}.time"),
    ]


def _fare_cap(draw: _Draw) -> list[_Piece]:
    """``less than 500 dollars`` (ATIS leaves ``than`` outside) or ``under 500 dollars``."""
    rng = draw.rng
    amount = _piece(f"{rng.randrange(100, 1600, 50)} dollars", "fare_amount")
    if rng.random() < 0.5:
        return [_piece("less", "cost_relative"), _piece("than", None), amount]
    return [_piece("under", "cost_relative"), amount]


def _flight_number(draw: _Draw) -> list[_Piece]:
    return [_piece(str(draw.rng.randint(1, 2999)), "flight_number")]


def _airport(draw: _Draw, loc: str) -> list[_Piece]:
    """A named airport or ``<city> [international] airport`` (slot ``<loc>airport_name``).

    Only the words after the city tell ``<city> airport`` from a city slot.
    """
    slot = f"{loc}airport_name"
    if draw.rng.random() < 0.4:
        return [_piece(draw.common_first(_AIRPORTS), slot)]
    kind = draw.rng.choice(("airport", "airport", "international airport"))
    return [_piece(f"{draw.city()[0]} {kind}", slot)]


def _window(draw: _Draw) -> list[_Piece]:
    """``between 5 and 7 pm`` or ``between 5 pm and 7 pm``: two slots of a departure window."""
    rng = draw.rng
    start = rng.randint(1, 10)
    end = rng.randint(start + 1, 11)
    half = rng.choice(("am", "pm"))
    first = f"{start} {half}" if rng.random() < 0.5 else str(start)
    return [
        _piece("between", None),
        _piece(first, "depart_time.start_time"),
        _piece("and", None),
        _piece(f"{end} {half}", "depart_time.end_time"),
    ]


def _constraints(draw: _Draw) -> list[_Piece]:
    """Origin, destination and up to four other constraints of a flight, shuffled, now and
    then with a pause (``uh``, ``and``) between two of them."""
    rng = draw.rng
    kinds = ["origin", "destination", *rng.sample(_EXTRAS, rng.randint(0, 4))]
    rng.shuffle(kinds)
    pieces: list[_Piece] = []
    for i, kind in enumerate(kinds):
        if i and rng.random() < 0.15:
            pieces.append(_piece(draw.common_first(_POOLS["pause"]), None))
        pieces.extend(_expand(draw, draw.common_first(_CONSTRAINTS[kind])))
    return pieces


_SLOTS: dict[str, Callable[[_Draw], list[_Piece]]] = {
    "from": partial(_city, loc="fromloc."),
    "to": partial(_city, loc="toloc."),
    "stop": partial(_city, loc="stoploc."),
    "city": partial(_city, loc=""),
    "airport": partial(_airport, loc=""),
    "from_airport": partial(_airport, loc="fromloc."),
    "to_airport": partial(_airport, loc="toloc."),
    "window": _window,
    "dep_day": partial(_day, role="depart_date"),
    "arr_day": partial(_day, role="arrive_date"),
    "ret_day": partial(_day, role="return_date"),
    "dep_date": partial(_date, role="depart_date"),
    "arr_date": partial(_date, role="arrive_date"),
    "ret_date": partial(_date, role="return_date"),
    "dep_time": partial(_time, role="depart_time"),
    "arr_time": partial(_time, role="arrive_time"),
    "fare_cap": _fare_cap,
    "flight_no": _flight_number,
    "constraints": _constraints,
    **{name: partial(_value, slot=slot, values=values) for name, (slot, values) in _VALUES.items()},
}


def _expand(draw: _Draw, template: str) -> list[_Piece]:
    """The pieces of one instance of a template."""
    rng = draw.rng
    pieces: list[_Piece] = []
    for token in template.split():
        if token.startswith("{"):
            if token.endswith("?") and rng.random() < 0.5:
                continue
            pieces.extend(_SLOTS[token.strip("{}?")](draw))
        elif token.startswith("<"):
            pieces.append(_piece(draw.common_first(_POOLS[token.strip("<>")]), None))
        else:
            pieces.append(_piece(token, None))
    return pieces


def _utterance(draw: _Draw) -> tuple[list[_Piece], str]:
    """One utterance as pieces, and its intent."""
    intent = draw.rng.choices(INTENTS, weights=_INTENT_WEIGHTS)[0]
    draw.cities = []
    return _expand(draw, f"<opener> {draw.rng.choice(_TEMPLATES[intent])} <closer>"), intent


def _corrupt(
    pieces: list[_Piece], intent: str, noise: float, rng: random.Random
) -> tuple[list[_Piece], str]:
    """Relabel each slot span, and the intent, with probability ``noise`` (BIO stays valid)."""
    noisy = [
        (words, rng.choice([s for s in SLOT_TYPES if s != slot]))
        if slot is not None and rng.random() < noise
        else (words, slot)
        for words, slot in pieces
    ]
    if rng.random() < noise:
        intent = rng.choice([i for i in INTENTS if i != intent])
    return noisy, intent


def _sentence(pieces: list[_Piece], intent: str) -> Sentence:
    words: list[str] = []
    tags: list[str] = []
    for phrase, slot in pieces:
        words.extend(phrase)
        if slot is None:
            tags.extend("O" for _ in phrase)
        else:
            tags.extend(f"{'I' if i else 'B'}-{slot}" for i in range(len(phrase)))
    return Sentence(words=tuple(words), tags=tuple(tags), intent=intent)


def _stream(seed: int, noise: float) -> Iterator[Sentence]:
    draw = _Draw(random.Random(seed))
    noise_rng = random.Random(f"{seed}/noise")
    while True:
        pieces, intent = _utterance(draw)
        if noise > 0:
            pieces, intent = _corrupt(pieces, intent, noise, noise_rng)
        yield _sentence(pieces, intent)


def _check(size: int, name: str, noise: float) -> None:
    if size < 1:
        raise ValueError(f"{name} must be at least 1, got {size!r}")
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be in [0, 1], got {noise!r}")


def airline_corpus(size: int, seed: int = 0, noise: float = 0.0) -> list[Sentence]:
    """Generate ``size`` airline-booking utterances with BIO slot tags and an intent.

    Words are lower case, as in ATIS; tags use the names in `SLOT_TYPES`, intents those in
    `INTENTS`. The result is deterministic for a seed, and a shorter corpus is a prefix of a
    longer one with the same seed. Identical utterances can occur (short templates).

    Args:
        size: Number of utterances (at least 1).
        seed: Random seed.
        noise: Probability that a slot span is relabelled with another slot type, and
            (independently) that the intent is replaced by another intent. Words, spans and
            the clean labels do not depend on it.

    Returns:
        `Sentence` objects with ``words``, ``tags`` and ``intent`` set.

    Raises:
        ValueError: if ``size < 1`` or ``noise`` is outside ``[0, 1]``.
    """
    _check(size, "size", noise)
    return list(islice(_stream(seed, noise), size))


def airline_splits(
    train: int = 2000, valid: int = 300, test: int = 500, seed: int = 0, noise: float = 0.0
) -> dict[str, list[Sentence]]:
    """Train, validation and test splits of the generated airline corpus.

    Split ``k`` (train 0, valid 1, test 2) is drawn with its own seed ``3 * seed + k``, so
    splits of different base seeds never share a stream. Train is exactly
    ``airline_corpus(train, 3 * seed, noise)``; valid keeps, in order, the utterances of
    seed ``3 * seed + 1`` whose words are not in train, and test those of ``3 * seed + 2``
    whose words are in neither, so no utterance is shared between splits.

    Args:
        train: Training size.
        valid: Validation size.
        test: Test size.
        seed: Base seed.
        noise: Label noise of the training split only (see `airline_corpus`); valid and
            test stay clean.

    Returns:
        ``{"train": [...], "valid": [...], "test": [...]}``.

    Raises:
        ValueError: if a size is below 1 or ``noise`` is outside ``[0, 1]``.
    """
    sizes = {"train": train, "valid": valid, "test": test}
    for name, size in sizes.items():
        _check(size, name, noise)
    seen: set[tuple[str, ...]] = set()
    splits: dict[str, list[Sentence]] = {}
    for k, (name, size) in enumerate(sizes.items()):
        stream = _stream(3 * seed + k, noise if name == "train" else 0.0)
        splits[name] = list(islice((s for s in stream if s.words not in seen), size))
        seen.update(s.words for s in splits[name])
    return splits


__all__ = ["INTENTS", "SLOT_TYPES", "SYNTHETIC_NOTICE", "airline_corpus", "airline_splits"]
