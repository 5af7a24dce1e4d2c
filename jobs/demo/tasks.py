"""Task templates behind ``finesift demo-data``: ten kinds of correct, fluent instruction rows.

Every task is a function ``(rng, wrong) -> Task`` that draws its parameters from ``rng`` (so
a row can be rebuilt from its seed) and computes a real answer from them. Its ``key`` names
the content: two rows with the same key would read as near-duplicates, so the generator
keeps keys unique. ``detail`` holds the numbers of numeric tasks; the generator adds it to
the key only once a task's key space runs out. With ``wrong=True`` a task draws exactly the
same instruction and writes a plausible but wrong answer in another style (for conflicts).

Importable without Ray; pure Python.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Hashable
from typing import NamedTuple


class Task(NamedTuple):
    """One generated row before defects are injected."""

    instruction: str
    input: str
    output: str
    key: tuple[Hashable, ...]
    detail: Hashable = None


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


_ALTERNATIVES = re.compile(r"\[([^\[\]]*)\]")


def _vary(r: random.Random, text: str) -> str:
    """Replace every ``[a|b|c]`` group of ``text`` by one of its options, so that rows of one
    template do not share most of their word shingles."""
    return _ALTERNATIVES.sub(lambda m: r.choice(m.group(1).split("|")), text)


def _split(text: str, sep: str = "|") -> list[str]:
    """The items of a ``sep``-separated string (tables read better as one string)."""
    return text.split(sep)


def _table(text: str) -> list[list[str]]:
    """Rows of a ``|``-separated table: one per line; indented lines continue the row above."""
    rows: list[str] = []
    for line in text.strip("\n").splitlines():
        if line[:1].isspace() and rows:
            rows[-1] += " " + line.strip()
        elif line.strip():
            rows.append(line)
    return [[c.strip() for c in row.split("|")] for row in rows]


NAMES = _split(
    "Maya Liam Sofia Noah Amara Lucas Priya Mateo Hana Omar Elena Kofi Ingrid Diego Leila Tomas "
    "Aisha Jonas Mei Rafael Zara Felix Nadia Hugo Chloe Samir Yuki Daniel Fatima Oscar Lena "
    "Arjun Clara Marcus Iris Pablo Freya Kenji Lucia Theo",
    " ",
)
CITIES = _split(
    "Lisbon|Toronto|Nairobi|Melbourne|Krakow|Osaka|Valencia|Denver|Glasgow|Porto|Utrecht|"
    "Halifax|Bergen|Cordoba|Adelaide|Leeds|Bologna|Quebec City|Tallinn|Seville|Gothenburg|"
    "Wellington|Bristol|Lyon|Austin|Edinburgh|Cape Town|Montreal|Hamburg|Kyoto"
)
WEEKDAYS = _split("Monday Tuesday Wednesday Thursday Friday Saturday Sunday", " ")


# --- arithmetic ----------------------------------------------------------------------------

_ITEMS = _split(
    "apples|stickers|marbles|books|pencils|seashells|trading cards|cupcakes|stamps|postcards|"
    "tomatoes|bottles of water|notebooks|balloons|candles|cookies|tulips|buttons|coins|"
    "puzzles|eggs|oranges|paintbrushes|keychains|toy cars|comic books|muffins|beads|"
    "jars of honey|tennis balls"
)
_CONTEXTS = _split(
    "at the farmers' market|for a school fair|before the weekend|for a birthday party|"
    "at a garage sale|during a camping trip|for the community garden|at the craft store|"
    "for a charity drive|on a rainy Saturday|for the science club|at the summer festival|"
    "for a family picnic|at the bookshop|for the holiday season|during spring break|"
    "for a neighbourhood swap|at the flea market|for the art class|on the way home from work"
)


def _money(x: float) -> str:
    return f"${x:,.2f}"


def arithmetic(r: random.Random, wrong: bool) -> Task:
    """A word problem with a worked, correct answer."""
    name, item, ctx, op = r.choice(NAMES), r.choice(_ITEMS), r.choice(_CONTEXTS), r.randrange(8)
    if op == 0:
        a, b = r.randint(12, 240), r.randint(5, 160)
        value, nums = a + b, (a, b)
        problem = (
            f"{name} has {a} {item}. {name} gets {b} more {ctx}. "
            f"How many {item} does {name} have now?"
        )
        why = f"{name} starts with {a} {item} and gets {b} more, so we add the two amounts"
        steps = f"{a} + {b} = {value}"
        claim = f"{name} now has {{v}} {item}"
    elif op == 1:
        a = r.randint(40, 300)
        b = r.randint(5, a - 10)
        value, nums = a - b, (a, b)
        problem = (
            f"{name} had {a} {item} and gave {b} of them away {ctx}. "
            f"How many {item} does {name} have left?"
        )
        why = f"giving {item} away lowers the total, so we subtract {b} from {a}"
        steps = f"{a} - {b} = {value}"
        claim = f"{name} has {{v}} {item} left"
    elif op == 2:
        a, b = r.randint(3, 25), r.randint(4, 24)
        value, nums = a * b, (a, b)
        problem = (
            f"{name} buys {a} boxes of {item} {ctx}. Each box holds {b} {item}. "
            f"How many {item} does {name} buy altogether?"
        )
        why = "every box holds the same number, so we multiply the boxes by the amount per box"
        steps = f"{a} × {b} = {value}"
        claim = f"{name} buys {{v}} {item} altogether"
    elif op == 3:
        k, value = r.randint(2, 12), r.randint(3, 30)
        total, nums = k * value, (k, value)
        problem = (
            f"{name} has {total} {item} and shares them equally among {k} friends "
            f"{ctx}. How many {item} does each friend receive?"
        )
        why = "sharing equally means dividing the total by the number of friends"
        steps = f"{total} ÷ {k} = {value}"
        claim = f"each friend receives {{v}} {item}"
    elif op == 4:
        price, pct = r.randint(12, 240), r.choice((10, 15, 20, 25, 30, 40, 50))
        off = price * pct / 100
        value, nums = price - off, (price, pct)
        problem = (
            f"A set of {item} costs ${price} {ctx}, and {name} has a coupon for {pct}% "
            f"off. How much does {name} pay after the discount?"
        )
        why = f"the discount is {pct}% of ${price}, which is {_money(off)}, and we subtract it"
        steps = f"${price} - {_money(off)} = {_money(value)}"
        claim = f"{name} pays {{v}}"
    elif op == 5:
        n, each, bill = r.randint(2, 9), r.randint(5, 39) / 4, r.choice((50, 100))
        cost = n * each
        bill = 100 if cost >= bill else bill  # the bill always covers the purchase
        value, nums = bill - cost, (n, each, bill)
        problem = (
            f"{name} buys {n} {item} at {_money(each)} each {ctx} and pays with a "
            f"${bill} bill. How much change does {name} get back?"
        )
        why = (
            f"the {item} cost {n} × {_money(each)} = {_money(cost)}, and the change is "
            "what remains of the bill"
        )
        steps = f"${bill} - {_money(cost)} = {_money(value)}"
        claim = f"{name} gets {{v}} back"
    elif op == 6:
        value = r.randint(20, 90)
        x, y = value + r.randint(-9, 9), value + r.randint(-9, 9)
        z = 3 * value - x - y
        total, nums = x + y + z, (x, y, z)
        problem = (
            f"{name} sold {x}, {y} and {z} {item} on three days {ctx}. "
            f"What is the average number of {item} sold per day?"
        )
        why = (
            f"the average is the total divided by the number of days, and {x} + {y} + {z} = {total}"
        )
        steps = f"{total} ÷ 3 = {value}"
        claim = f"{name} sold an average of {{v}} {item} per day"
    else:
        rate, value = r.randint(6, 60), r.randint(2, 11)
        total, nums = rate * value, (rate, value)
        problem = (
            f"{name} packs {rate} {item} per hour {ctx}. "
            f"How many hours does it take {name} to pack {total} {item}?"
        )
        why = "at a steady pace the time is the total divided by the hourly rate"
        steps = f"{total} ÷ {rate} = {value}"
        claim = f"it takes {name} {{v}} hours"
    frame = r.randrange(4)
    instruction, inp = (
        (problem, ""),
        ("Solve the following word problem and explain your reasoning.", problem),
        (f"Answer this math question: {problem}", ""),
        ("Work out the answer to this problem step by step.", problem),
    )[frame]
    key = ("arithmetic", op, name, item, ctx)
    if wrong:
        off_by = r.choice((-3, -2, -1, 1, 2, 5))
        bad = value + off_by if isinstance(value, int) else _money(value + off_by * 1.5)
        return Task(
            instruction, inp, f"I worked it out in my head: {claim.format(v=bad)}.", key, nums
        )
    says = claim.format(v=value if isinstance(value, int) else _money(value))
    style = r.randrange(3)
    if style == 0:
        out = f"{_cap(why)}. {steps}. Therefore, {says}."
    elif style == 1:
        out = f"Step 1: {why}. Step 2: calculate {steps}. Answer: {says}."
    else:
        out = f"{_cap(says)}. To see why, note that {why}: {steps}."
    return Task(instruction, inp, out, key, nums)


# --- unit conversion -----------------------------------------------------------------------

# from unit | singular | to unit | factor (or the formulas c2f / f2c) | subject group. The
# first conversion of a group starts from the unit its subjects' ranges are given in.
_CONVERSIONS = _table("""
kilometres|kilometre|miles|0.621371|route
miles|mile|kilometres|1.609344|route
metres|metre|feet|3.28084|height
feet|foot|metres|0.3048|height
centimetres|centimetre|inches|0.393701|small
inches|inch|centimetres|2.54|small
kilograms|kilogram|pounds|2.20462|mass
pounds|pound|kilograms|0.453592|mass
litres|litre|US gallons|0.264172|volume
US gallons|US gallon|litres|3.78541|volume
degrees Celsius|degree Celsius|degrees Fahrenheit|c2f|temp
degrees Fahrenheit|degree Fahrenheit|degrees Celsius|f2c|temp
hours|hour|minutes|60|time
kilometres per hour|kilometre per hour|metres per second|0.277778|speed
""")
# group -> subjects: noun phrase | verb phrase before the measurement | plausible range in
# the group's first unit
_SUBJECTS = {
    "route": _table("""
The cycling route from {city} to the coast|is {v} long|20|120
A hiking trail in the hills outside {city}|stretches for|5|40
The annual charity run through {city}|covers|5|42
The canal towpath that leaves {city}|runs for|8|60
A pilgrimage walk starting in {city}|takes walkers|50|800
The scenic railway north of {city}|climbs for|10|90
"""),
    "height": _table("""
The old lighthouse near {city}|is {v} tall|15|60
A climbing wall at the sports centre in {city}|rises|8|25
The bell tower of the cathedral in {city}|stands {v} high|30|110
A giant redwood in the botanical garden of {city}|has grown to|40|95
The ski jump above {city}|drops|60|140
The waterfall in the national park near {city}|falls|20|300
"""),
    "small": _table("""
A picture frame bought at a market in {city}|is {v} wide|20|90
The monitor on a designer's desk in {city}|measures {v} across|40|80
A loaf of rye bread from a bakery in {city}|is {v} long|25|60
The snowfall recorded overnight in {city}|was|2|60
A handmade violin from a workshop in {city}|has a body of|34|36
The carry-on bag allowed by an airline in {city}|may be|40|56
"""),
    "mass": _table("""
A suitcase checked in at the airport in {city}|weighs|8|32
The prize pumpkin at the county fair near {city}|weighs|50|900
A sack of flour delivered to a pizzeria in {city}|weighs|10|50
A newborn elephant at the zoo in {city}|weighed|80|120
The bronze statue restored by a museum in {city}|weighs|200|3000
A mountain bike sold by a shop in {city}|weighs|10|16
"""),
    "volume": _table("""
The fish tank in a dentist's waiting room in {city}|holds|50|400
A delivery van in {city}|has a fuel tank of|40|120
The rain barrel in a community garden in {city}|holds|100|250
A hot tub at a spa hotel in {city}|holds|800|1600
The punch bowl for a wedding party in {city}|was filled with|5|20
A milk churn at a dairy farm near {city}|holds|20|50
"""),
    "temp": _table("""
A pizza oven in a restaurant in {city}|is set to|250|450
The water of an indoor pool in {city}|is kept at|26|30
A greenhouse for tropical plants in {city}|is heated to|20|30
The coldest night of last winter in {city}|dropped to|-25|-2
A sauna at the public baths in {city}|reaches|70|100
The fermentation tank at a brewery in {city}|is held at|10|22
"""),
    "time": _table("""
The train journey from {city} to the capital|takes|2|9
A pottery workshop at the library in {city}|lasts|2|4
The guided walking tour of old {city}|lasts|1|3
A ferry crossing from {city} to the nearest island|takes|1|6
"""),
    "speed": _table("""
A cyclist commuting through {city}|rides at|12|30
The ferry leaving the harbour of {city}|travels at|20|60
A tram on the main avenue of {city}|runs at|15|50
The wind during last week's storm in {city}|gusted at|40|140
"""),
}
# Why someone needs the figure: gives rows of one subject different topics.
_WHY_ASKED = _split(
    "I need the figure for a school project.|The number comes from an old travel guide.|"
    "My pen pal in another country asked about it.|I want to quote it in a blog post.|"
    "The local newspaper printed this figure last week.|It is for a quiz I am writing.|"
    "A tourist asked me about it at the station.|I am filling in a form that uses other "
    "units.|My grandfather only thinks in the other units.|It came up in a podcast I like.|"
    "We are planning a family trip and want to compare.|Our club newsletter needs both units.|"
    "I read it on a sign and was curious.|It appears in a recipe my aunt sent me.|My "
    "teacher set it as homework.|A colleague abroad asked me to check it."
)
# Conversions sharing a group are the same measurement seen from either unit.
_GROUPS = {g: [i for i, c in enumerate(_CONVERSIONS) if c[4] == g] for g in _SUBJECTS}


def _num(x: float) -> str:
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def _convert(value: float, factor: str) -> float:
    if factor == "c2f":
        return value * 9 / 5 + 32
    if factor == "f2c":
        return (value - 32) * 5 / 9
    return value * float(factor)


def unit_conversion(r: random.Random, wrong: bool) -> Task:
    """Convert a measurement given in context, showing the factor or formula."""
    group = r.choice(list(_SUBJECTS))
    ci = r.choice(_GROUPS[group])
    src, src1, dst, factor, _ = _CONVERSIONS[ci]
    si, why, city = (
        r.randrange(len(_SUBJECTS[group])),
        r.randrange(len(_WHY_ASKED)),
        r.choice(CITIES),
    )
    noun, verb, low, high = _SUBJECTS[group][si]
    base = _GROUPS[group][0]
    # Ranges are in the group's first unit; the inverse conversion draws in its own unit.
    bounds = [float(low), float(high)]
    if ci != base:
        bounds = sorted(_convert(x, _CONVERSIONS[base][3]) for x in bounds)
    value = r.randint(round(bounds[0]), max(round(bounds[0]), round(bounds[1])))
    measure = f"{value} {src}"
    verb = verb.replace("{v}", measure) if "{v}" in verb else f"{verb} {measure}"
    subject = f"{noun.format(city=city)} {verb}. {_WHY_ASKED[why]}"
    result = _convert(value, factor)
    if factor == "c2f":
        how = f"use the formula F = C × 9/5 + 32: {value} × 9/5 + 32 = {_num(result)}"
    elif factor == "f2c":
        how = f"use the formula C = (F - 32) × 5/9: ({value} - 32) × 5/9 ≈ {_num(result)}"
    else:
        how = (
            f"multiply by {factor}, because one {src1} is {factor} {dst}: "
            f"{value} × {factor} ≈ {_num(result)}"
        )
    frame = r.randrange(3)
    instruction, inp = (
        (f"{subject} Convert the measurement to {dst}.", ""),
        (f"{subject} How much is that in {dst}?", ""),
        (f"Convert the measurement in this text to {dst}.", subject),
    )[frame]
    # Rows of one subject read alike (to an embedding model) whatever the city, reason, unit
    # direction or value; those only join the key once the subjects run out.
    key = ("unit_conversion", group, si)
    if wrong:
        bad = result * r.choice((0.5, 0.8, 1.25, 2.0)) + r.choice((-3, 3))
        return Task(
            instruction,
            inp,
            f"That comes to roughly {_num(bad)} {dst} in total.",
            key,
            (ci, value, city, why),
        )
    if r.random() < 0.5:
        out = f"To convert {src} to {dst}, {how}. The answer is about {_num(result)} {dst}."
    else:
        out = (
            f"The measurement is about {_num(result)} {dst}. To get there from {value} {src}, "
            f"{how}, and round to two decimals."
        )
    return Task(instruction, inp, out, key, (ci, value, city, why))


# --- translation ---------------------------------------------------------------------------

# subject | person (0=I, 1=he/she, 2=we, 3=they) | French | Spanish ("" drops the pronoun)
_SUBJ = _table("""
I|0|je|
we|2|nous|
my sister|1|ma sœur|mi hermana
my brother|1|mon frère|mi hermano
my parents|3|mes parents|mis padres
the children|3|les enfants|los niños
our neighbours|3|nos voisins|nuestros vecinos
the teacher|1|le professeur|el profesor
my grandmother|1|ma grand-mère|mi abuela
my best friend|1|mon meilleur ami|mi mejor amigo
the students|3|les étudiants|los estudiantes
my cousins|3|mes cousins|mis primos
""")
# English base | English 3rd person | French je/il/nous/ils | Spanish yo/él/nosotros/ellos
_VERBS = _table("""
read a book|reads a book|lis un livre|lit un livre|lisons un livre|lisent un livre|leo un libro|lee
    un libro|leemos un libro|leen un libro
drink coffee|drinks coffee|bois du café|boit du café|buvons du café|boivent du café|bebo café|bebe
    café|bebemos café|beben café
cook dinner|cooks dinner|prépare le dîner|prépare le dîner|préparons le dîner|préparent le dîner|
    preparo la cena|prepara la cena|preparamos la cena|preparan la cena
walk the dog|walks the dog|promène le chien|promène le chien|promenons le chien|promènent le chien|
    paseo al perro|pasea al perro|paseamos al perro|pasean al perro
listen to music|listens to music|écoute de la musique|écoute de la musique|écoutons de la musique|
    écoutent de la musique|escucho música|escucha música|escuchamos música|escuchan música
play football|plays football|joue au football|joue au football|jouons au football|jouent au
    football|juego al fútbol|juega al fútbol|jugamos al fútbol|juegan al fútbol
study mathematics|studies mathematics|étudie les mathématiques|étudie les mathématiques|étudions
    les mathématiques|étudient les mathématiques|estudio matemáticas|estudia matemáticas|estudiamos
    matemáticas|estudian matemáticas
write letters|writes letters|écris des lettres|écrit des lettres|écrivons des lettres|écrivent des
    lettres|escribo cartas|escribe cartas|escribimos cartas|escriben cartas
buy bread|buys bread|achète du pain|achète du pain|achetons du pain|achètent du pain|compro pan|
    compra pan|compramos pan|compran pan
watch a film|watches a film|regarde un film|regarde un film|regardons un film|regardent un film|veo
    una película|ve una película|vemos una película|ven una película
eat fruit|eats fruit|mange des fruits|mange des fruits|mangeons des fruits|mangent des fruits|como
    fruta|come fruta|comemos fruta|comen fruta
clean the kitchen|cleans the kitchen|nettoie la cuisine|nettoie la cuisine|nettoyons la cuisine|
    nettoient la cuisine|limpio la cocina|limpia la cocina|limpiamos la cocina|limpian la cocina
sing songs|sings songs|chante des chansons|chante des chansons|chantons des chansons|chantent des
    chansons|canto canciones|canta canciones|cantamos canciones|cantan canciones
take the train|takes the train|prends le train|prend le train|prenons le train|prennent le train|
    tomo el tren|toma el tren|tomamos el tren|toman el tren
visit the museum|visits the museum|visite le musée|visite le musée|visitons le musée|visitent le
    musée|visito el museo|visita el museo|visitamos el museo|visitan el museo
paint pictures|paints pictures|peins des tableaux|peint des tableaux|peignons des tableaux|peignent
    des tableaux|pinto cuadros|pinta cuadros|pintamos cuadros|pintan cuadros
water the plants|waters the plants|arrose les plantes|arrose les plantes|arrosons les plantes|
    arrosent les plantes|riego las plantas|riega las plantas|regamos las plantas|riegan las plantas
learn English|learns English|apprends l'anglais|apprend l'anglais|apprenons l'anglais|apprennent
    l'anglais|aprendo inglés|aprende inglés|aprendemos inglés|aprenden inglés
ride a bicycle|rides a bicycle|fais du vélo|fait du vélo|faisons du vélo|font du vélo|monto en
    bicicleta|monta en bicicleta|montamos en bicicleta|montan en bicicleta
""")
_TIMES = _table("""
every morning|chaque matin|cada mañana
in the evening|le soir|por la noche
on Sundays|le dimanche|los domingos
after work|après le travail|después del trabajo
before breakfast|avant le petit-déjeuner|antes del desayuno
on weekends|le week-end|los fines de semana
every day|tous les jours|todos los días
in the summer|en été|en verano
at noon|à midi|al mediodía
on Mondays|le lundi|los lunes
in winter|en hiver|en invierno
twice a week|deux fois par semaine|dos veces por semana
""")
_PLACES = _table("""
at home|à la maison|en casa
in the park|dans le parc|en el parque
in the garden|dans le jardin|en el jardín
at the library|à la bibliothèque|en la biblioteca
in the city centre|au centre-ville|en el centro
at school|à l'école|en la escuela
at the beach|à la plage|en la playa
in the village|au village|en el pueblo
at the office|au bureau|en la oficina
near the river|près de la rivière|cerca del río
""")
_LINKS = _table("""
and|et|y
but|mais|pero
while|tandis que|mientras que
""")
_LANGS = ("French", "Spanish")


def _clause(r: random.Random) -> tuple[list[str], list[str], tuple[int, ...]]:
    """One clause in English, French and Spanish: (texts, parts, choice indices)."""
    si, vi, ti, pi = (r.randrange(len(t)) for t in (_SUBJ, _VERBS, _TIMES, _PLACES))
    subj, person = _SUBJ[si], int(_SUBJ[si][1])
    verb = _VERBS[vi]
    en = f"{subj[0]} {verb[1] if person == 1 else verb[0]} {_PLACES[pi][0]} {_TIMES[ti][0]}"
    fr_verb = verb[2 + (0, 1, 2, 3)[person]]
    fr_subj = "j'" if subj[2] == "je" and fr_verb[0] in "aeéèiouh" else subj[2] + " "
    fr = f"{fr_subj}{fr_verb} {_PLACES[pi][1]} {_TIMES[ti][1]}"
    es_subj = f"{subj[3]} " if subj[3] else ""
    es = f"{es_subj}{verb[6 + person]} {_PLACES[pi][2]} {_TIMES[ti][2]}"
    return [en, fr, es], [subj[0], _TIMES[ti][0], _PLACES[pi][0]], (si, vi, ti, pi)


def _sentence(r: random.Random) -> tuple[list[str], list[list[str]], tuple[int, ...]]:
    """A two-clause sentence in English, French and Spanish."""
    (a, pa, ka), (b, pb, kb) = _clause(r), _clause(r)
    li = r.randrange(len(_LINKS))
    texts = [_cap(f"{a[i]}, {_LINKS[li][i]} {b[i]}.") for i in range(3)]
    return texts, [pa, pb], (*ka, li, *kb)


def phrase(r: random.Random, lang: str) -> str:
    """A fluent two-clause sentence in ``lang`` ("en", "fr" or "es")."""
    return _sentence(r)[0][("en", "fr", "es").index(lang)]


def translation(r: random.Random, wrong: bool) -> Task:
    """Translate a short everyday sentence into French or Spanish."""
    texts, parts, key = _sentence(r)
    li = r.randrange(2)
    lang, target = _LANGS[li], texts[1 + li]
    frame = r.randrange(3)
    instruction, inp = (
        (f"Translate the following sentence into {lang}.", texts[0]),
        (f"Translate into {lang}: {texts[0]}", ""),
        (f"How would you say this in {lang}?", texts[0]),
    )[frame]
    if wrong:
        other = _sentence(r)[0][1 + li]
        return Task(instruction, inp, f'Sure, in {lang}: "{other}"', ("translation", li, key))
    time_en = parts[0][1]
    table = _TIMES if r.random() < 0.5 else _PLACES
    word = parts[0][1] if table is _TIMES else parts[0][2]
    word_tr = next(row[1 + li] for row in table if row[0] == word)
    style = r.randrange(3)
    if style == 0:
        out = (
            f'The {lang} translation is: "{target}" Note that "{word}" becomes '
            f'"{word_tr}" in {lang}.'
        )
    elif style == 1:
        out = (
            f'"{target}" In this translation the verbs agree with their subjects, and the '
            f'expression "{word}" is rendered as "{word_tr}".'
        )
    else:
        out = (
            f'In {lang} you would write: "{target}" The word order stays close to the '
            f'original, with "{time_en}" placed at the end of the first clause.'
        )
    return Task(instruction, inp, out, ("translation", li, key))


# --- facts ---------------------------------------------------------------------------------

# country | capital | continent | main language(s) | currency
_COUNTRIES = _table("""
France|Paris|Europe|French|euro
Germany|Berlin|Europe|German|euro
Spain|Madrid|Europe|Spanish|euro
Italy|Rome|Europe|Italian|euro
Portugal|Lisbon|Europe|Portuguese|euro
Poland|Warsaw|Europe|Polish|złoty
Sweden|Stockholm|Europe|Swedish|Swedish krona
Norway|Oslo|Europe|Norwegian|Norwegian krone
Greece|Athens|Europe|Greek|euro
Austria|Vienna|Europe|German|euro
Hungary|Budapest|Europe|Hungarian|forint
the Czech Republic|Prague|Europe|Czech|Czech koruna
Ireland|Dublin|Europe|English and Irish|euro
Denmark|Copenhagen|Europe|Danish|Danish krone
Iceland|Reykjavík|Europe|Icelandic|Icelandic króna
Japan|Tokyo|Asia|Japanese|yen
South Korea|Seoul|Asia|Korean|won
India|New Delhi|Asia|Hindi and English|Indian rupee
Thailand|Bangkok|Asia|Thai|baht
Vietnam|Hanoi|Asia|Vietnamese|dong
Egypt|Cairo|Africa|Arabic|Egyptian pound
Kenya|Nairobi|Africa|Swahili and English|Kenyan shilling
Nigeria|Abuja|Africa|English|naira
Ghana|Accra|Africa|English|cedi
Ethiopia|Addis Ababa|Africa|Amharic|birr
Brazil|Brasília|South America|Portuguese|real
Argentina|Buenos Aires|South America|Spanish|Argentine peso
Chile|Santiago|South America|Spanish|Chilean peso
Peru|Lima|South America|Spanish|sol
Colombia|Bogotá|South America|Spanish|Colombian peso
Mexico|Mexico City|North America|Spanish|Mexican peso
Canada|Ottawa|North America|English and French|Canadian dollar
Australia|Canberra|Oceania|English|Australian dollar
New Zealand|Wellington|Oceania|English and Māori|New Zealand dollar
Turkey|Ankara|Europe and Asia|Turkish|Turkish lira
Ukraine|Kyiv|Europe|Ukrainian|hryvnia
Switzerland|Bern|Europe|German, French, Italian and Romansh|Swiss franc
Finland|Helsinki|Europe|Finnish and Swedish|euro
Pakistan|Islamabad|Asia|Urdu and English|Pakistani rupee
Morocco|Rabat|Africa|Arabic and Berber|Moroccan dirham
""")
# element | symbol | atomic number
_ELEMENTS = _table("""
hydrogen|H|1
helium|He|2
lithium|Li|3
carbon|C|6
nitrogen|N|7
oxygen|O|8
fluorine|F|9
neon|Ne|10
sodium|Na|11
magnesium|Mg|12
aluminium|Al|13
silicon|Si|14
phosphorus|P|15
sulfur|S|16
chlorine|Cl|17
argon|Ar|18
potassium|K|19
calcium|Ca|20
iron|Fe|26
cobalt|Co|27
nickel|Ni|28
copper|Cu|29
zinc|Zn|30
silver|Ag|47
tin|Sn|50
iodine|I|53
gold|Au|79
mercury|Hg|80
lead|Pb|82
uranium|U|92
""")


def facts(r: random.Random, wrong: bool) -> Task:
    """A question about a country (capital, currency, language) or a chemical element."""
    kind = r.randrange(4)
    if kind == 3:
        i = r.randrange(len(_ELEMENTS))
        el, sym, num = _ELEMENTS[i]
        if r.random() < 0.5:
            instruction = r.choice(
                (
                    f"What is the chemical symbol for {el}?",
                    f"Which symbol stands for {el} on the periodic table?",
                )
            )
            out = (
                f"The chemical symbol for {el} is {sym}. On the periodic table {el} sits at "
                f"atomic number {num}, so each of its atoms has {num} protons."
            )
        else:
            instruction = r.choice(
                (
                    f"What is the atomic number of {el}?",
                    f"How many protons does an atom of {el} have?",
                )
            )
            out = (
                f"{_cap(el)} has atomic number {num}: every {el} atom holds {num} protons in "
                f"its nucleus. Its chemical symbol is {sym}."
            )
        if wrong:
            _, bad_sym, bad_num = _ELEMENTS[(i + r.randint(1, 5)) % len(_ELEMENTS)]
            out = f"As far as I remember, the answer for {el} is {bad_sym} with number {bad_num}."
        return Task(instruction, "", out, ("facts", "element", i))
    i = r.randrange(len(_COUNTRIES))
    country, capital, continent, language, currency = _COUNTRIES[i]
    other = [_COUNTRIES[(i + r.randint(1, 8)) % len(_COUNTRIES)] for _ in range(3)]
    plural = " and " in language
    if kind == 0:
        instruction = r.choice(
            (
                f"What is the capital of {country}?",
                f"Which city is the capital of {country}?",
                f"Name the capital city of {country}.",
            )
        )
        out = (
            f"The capital of {country} is {capital}. As the capital, {capital} is home to the "
            f"national government and parliament of this country in {continent}."
        )
        bad = f"The capital of {country} is {other[0][1]}, where the government meets."
    elif kind == 1:
        instruction = r.choice(
            (
                f"What currency is used in {country}?",
                f"Which currency do people pay with in {country}?",
            )
        )
        out = (
            f"{_cap(country)} uses the {currency}. From {capital} to the smallest villages, "
            f"shops and restaurants in this {continent} country price goods in the "
            f"{currency}."
        )
        wrong_currency = next((o[4] for o in other if o[4] != currency), "US dollar")
        bad = f"People in {country} pay with the {wrong_currency}, like their neighbours do."
    else:
        instruction = r.choice(
            (
                f"What language is spoken in {country}?",
                f"Which language do most people speak in {country}?",
            )
        )
        verb = "are" if plural else "is"
        out = (
            f"People in {country} mainly speak {language}. {_cap(language)} {verb} heard in "
            f"the schools, newspapers and government offices of {capital} and across the "
            "rest of the country."
        )
        wrong_language = next((o[3] for o in other if o[3] != language), "Esperanto")
        bad = f"Most people in {country} speak {wrong_language} in everyday life."
    return Task(instruction, "", bad if wrong else out, ("facts", "country", i, kind))


# --- summarization -------------------------------------------------------------------------

_FACILITIES = _split(
    "public library|swimming pool|community health clinic|skate park|bus station|recycling "
    "centre|youth centre|market hall|concert hall|sports centre|ice rink|science museum|"
    "climbing gym|food bank warehouse|bicycle parking garage|botanical greenhouse"
)
_WORRIES = _split(
    "traffic on nearby streets|noise late in the evening|the loss of parking spaces|the cost "
    "of running it|the removal of old trees|higher rents in the area|litter after big events|"
    "the bright lights at night"
)
_INDUSTRIES = _split(
    "solar panel|furniture|software|shoe|coffee roasting|bicycle|toy|packaging|frozen food|"
    "video game|pet food|electric scooter|cosmetics|garden tool"
)
_DRIVERS = _split(
    "strong demand in Asia|a new online store|a popular budget product line|contracts with "
    "schools and hospitals|higher prices for premium models|a viral social media campaign|"
    "a new factory that cut delivery times|a partnership with a large supermarket chain"
)
_COHORTS = _split(
    "adults over sixty|secondary school students|office workers|night-shift nurses|amateur "
    "runners|first-year university students|new parents|long-distance truck drivers|"
    "professional musicians|retired teachers"
)
_HABITS = _table("""
took a short walk after lunch|reported better concentration in the afternoon
slept at least seven hours a night|made fewer mistakes on memory tests
ate breakfast every day|had steadier energy through the morning
spent time in a garden each week|reported lower levels of stress
read for twenty minutes before bed|fell asleep faster
used a standing desk|complained less about back pain
played a musical instrument|scored higher on tests of attention
drank water instead of sugary drinks|had fewer headaches
volunteered once a month|described themselves as less lonely
kept a daily gratitude diary|rated their mood more positively
""")
_DISASTERS = _table("""
storms|brought {n} millimetres of rain in a few hours|flooded roads|power lines came down
a snowstorm|left {n} centimetres of snow overnight|trapped drivers on the motorway|trains were
    cancelled
a heatwave|pushed temperatures past {t} degrees Celsius|filled hospitals with heatstroke cases|
    outdoor events were called off
wildfire smoke|drifted in from fires {n} kilometres away|kept children indoors|flights were delayed
a hailstorm|dropped hailstones as large as golf balls|smashed greenhouse roofs|farmers lost much of
    the fruit harvest
""")
_REGIONS = _split("northern|coastal|eastern|southern|lake|valley|mountain|island")
_ART = _table("""
photographs|a photographer who spent {n} years documenting fishing villages
paintings|a painter known for huge canvases of city rooftops
sculptures|a sculptor who works only with recycled steel
textiles|a weaver who revives patterns from the region's old farms
comics|a cartoonist whose strips have run in newspapers for {n} years
ceramics|a potter who fires everything in a wood-burning kiln
posters|a designer of travel posters from the golden age of railways
""")
_VENUES = _split(
    "the city museum|a former warehouse by the river|the university gallery|the old town "
    "hall|a gallery above the central station"
)
_PROJECTS = _table("""
a solar-powered boat|raced it across the harbour
a robot that sorts recycling|demonstrated it at the town fair
a weather station for the school roof|now share its data online
an app that shows free parking spaces|launched it for local drivers
a vegetable garden on the sports field|sold the first harvest to parents
a wheelchair ramp for the village library|built it over the summer holidays
a bird-counting camera|recorded {n} species in a single month
a low-cost water filter|tested it with a charity abroad
""")
_SCHOOLS = _split(
    "high school|secondary school|technical college|primary school|sixth-form college"
)
_MASCOTS = _split("Rovers|United|Falcons|Lions|Wanderers|Harriers|Athletic|Comets", "|")
_ORDINALS = _split("first second third fourth fifth sixth seventh eighth", " ")


def _paragraph(r: random.Random) -> tuple[str, str, str, tuple[Hashable, ...]]:
    """A short news paragraph, a faithful one-sentence summary and a wrong one. The key
    holds the slots that set the topic: rows sharing them read as the same story."""
    # Match reports (frame 3) have by far the most distinct stories: they get more draws.
    frame, city, person = r.choice((0, 1, 2, 3, 3, 3, 4, 5, 6)), r.choice(CITIES), r.choice(NAMES)
    bump = r.randint(2, 9)
    if frame == 0:
        fac, worry, day = r.choice(_FACILITIES), r.choice(_WORRIES), r.choice(WEEKDAYS)
        cost, months, visitors = r.randint(3, 60), r.randint(8, 40), 100 * r.randint(5, 90)
        text = (
            f"The city of {city} [opened|unveiled] its new {fac} on {day}. [The project cost "
            f"about|Building it cost roughly] {cost} million dollars and took {months} months. "
            f"Mayor {person} [said|told reporters] that the {fac} [is expected to|should] "
            f"welcome around {visitors} visitors [each|a] week. [Several local shops hope the "
            f"extra visitors will help their business.|Cafés on the same street are already "
            f"planning longer opening hours.|The old building it replaces had been closed "
            f"for years.] [Some residents, however, remain worried about|Not everyone is "
            f"pleased: neighbours have raised concerns about] {worry}."
        )
        good = (
            f"[{city} has opened a new {fac}|A new {fac} has opened in {city}] that cost about "
            f"{cost} million dollars and [should draw|is expected to attract] around "
            f"{visitors} visitors a week, although [some residents|neighbours] are concerned "
            f"about {worry}."
        )
        bad = f"A {fac} costing {cost + bump} million dollars opened in {city}; nobody objected."
        return _vary(r, text), _vary(r, good), bad, (frame, fac, worry)
    if frame == 1:
        company = r.choice(("Bright", "North", "Blue", "Silver", "Apex", "Clear")) + r.choice(
            ("field", "works", "line", "stone", "path", "wave")
        )
        ind, driver = r.choice(_INDUSTRIES), r.choice(_DRIVERS)
        pct, hires = r.randint(3, 40), 10 * r.randint(2, 50)
        cost = r.choice(("shipping", "energy", "raw material", "labour"))
        text = (
            f"{company}, a {ind} [company|maker] based in {city}, said its revenue grew by "
            f"{pct} percent [compared with a year earlier|over the past year]. [Most of the "
            f"growth came from|Managers credited the rise to] {driver}. [Chief executive "
            f"{person} told reporters|In an interview, chief executive {person} said] that the "
            f"company plans to hire {hires} more staff [over the next year|before next "
            f"summer]. [Profits rose more slowly than sales because|Profit margins shrank "
            f"slightly as] {cost} costs kept climbing."
        )
        good = (
            f"{company}'s revenue rose {pct} percent, [driven by|thanks to] {driver}, and it "
            f"plans to hire {hires} people, though [higher|rising] {cost} costs held back "
            f"profit growth."
        )
        bad = f"{company} saw sales fall by {pct + bump} percent and is cutting jobs."
        return _vary(r, text), _vary(r, good), bad, (frame, ind, driver)
    if frame == 2:
        group, (habit, effect) = r.choice(_COHORTS), r.choice(_HABITS)
        n, years, months = 50 * r.randint(4, 60), r.randint(2, 8), r.randint(2, 6)
        text = (
            f"[Researchers at the University of {city} followed|A team from the University of "
            f"{city} tracked] {n} {group} for {years} years. They found that [people|those] "
            f"who {habit} {effect} than those who did not. [The effect was strongest among "
            f"participants who kept the habit for at least {months} months.|Participants "
            f"filled in a short questionnaire every {months} months.|The volunteers wore "
            f"activity trackers for the whole study.] [Lead author Dr. {person} said the "
            f"results were encouraging but warned that the study shows a link, not a cause."
            f"|Dr. {person}, who led the work, cautioned that other factors may explain part "
            f"of the difference.]"
        )
        good = (
            f"[A {years}-year study of {n} {group} by the University of {city} found|"
            f"Following {n} {group} for {years} years, researchers in {city} found] that "
            f"those who {habit} {effect}, [although the researchers stress that this is a "
            f"link rather than proof of cause|but the link may not be causal]."
        )
        bad = f"Scientists proved that the habit has no effect on {group} at all."
        return _vary(r, text), _vary(r, good), bad, (frame, group, habit)
    if frame == 3:
        team1, team2 = (f"{c} {r.choice(_MASCOTS)}" for c in r.sample(CITIES, 2))
        s2 = r.randint(1, 3)
        s1 = s2 + r.randint(1, 3)
        crowd, pos, games = 1000 * r.randint(3, 60), r.choice(_ORDINALS), r.randint(3, 12)
        text = (
            f"The {team1} beat the {team2} {s1}-{s2} on {r.choice(WEEKDAYS)} evening in "
            f"front of {crowd} fans. {person} scored twice, including a late header that "
            f"settled the match. The {team2} had taken an early lead but struggled after "
            f"their captain was injured. The result lifts the {team1} to {pos} place in the "
            f"league table with {games} games left to play."
        )
        good = (
            f"The {team1} came from behind to beat the {team2} {s1}-{s2}, with {person} "
            f"scoring twice, and moved up to {pos} place with {games} games remaining."
        )
        bad = f"The {team2} won the match {s1 + bump}-{s2} and now lead the league."
        return text, good, bad, (frame, team1, team2)
    if frame == 4:
        (event, what, harm, also), region = r.choice(_DISASTERS), r.choice(_REGIONS)
        n, t, people = r.randint(20, 180), r.randint(36, 44), r.randint(3, 40)
        what = what.format(n=n, t=t)
        text = (
            f"In the {region} region around {city}, {event} {what} on "
            f"{r.choice(WEEKDAYS)}. The weather {harm}, and {also}. Emergency crews helped "
            f"{people} people, and the regional governor, {person}, promised money for "
            f"repairs. Forecasters expect calmer conditions by the end of the week."
        )
        good = (
            f"In the {region} region around {city}, {event} {what}, which {harm} and meant "
            f"that {also}, while emergency crews helped {people} people."
        )
        bad = f"The {region} region had a quiet week, and the forecast for {city} stayed mild."
        return text, good, bad, (frame, event)
    if frame == 5:
        (art, artist), venue = r.choice(_ART), r.choice(_VENUES)
        n, weeks = r.randint(6, 40), r.randint(4, 16)
        artist = artist.format(n=n)
        text = (
            f"A new exhibition at {venue} in {city} shows {art} by {person}, {artist}. "
            f"More than {n * 10} works are on display for {weeks} weeks. Entry is free on "
            f"Sundays, and the curators have added guided tours for schools. Critics have "
            f"praised the show for its attention to everyday life."
        )
        good = (
            f"{venue[:1].upper()}{venue[1:]} in {city} is showing {art} by {person}, "
            f"{artist}, in a {weeks}-week exhibition that critics have praised."
        )
        bad = f"The {art} exhibition in {city} closed early after poor reviews."
        return text, good, bad, (frame, art, venue)
    (thing, result), school = r.choice(_PROJECTS), r.choice(_SCHOOLS)
    n, team = r.randint(20, 90), r.randint(4, 15)
    result = result.format(n=n)
    text = (
        f"A team of {team} students from a {school} in {city} has built {thing}. [Working "
        f"after lessons for most of the year, they designed every part themselves with "
        f"help from their teacher, {person}.|Their teacher, {person}, says the idea came "
        f"from a class debate about the environment.] The students {result}. [They now "
        f"hope to enter a national competition for young engineers.|Local businesses "
        f"paid for the materials.]"
    )
    good = (
        f"[{team} students from a {school} in {city}|Students at a {school} in {city}] "
        f"built {thing} [with help from their teacher {person}|as a class project]; they "
        f"{result}."
    )
    bad = f"A company in {city} built {thing} for the local {school}."
    return _vary(r, text), _vary(r, good), bad, (frame, thing)


def summarization(r: random.Random, wrong: bool) -> Task:
    """Summarize a generated news paragraph in one sentence."""
    text, good, bad, key = _paragraph(r)
    instruction = r.choice(
        (
            "Summarize the following paragraph in one sentence.",
            "Write a one-sentence summary of this news report.",
            "Give a short summary of the text below.",
            "Condense this article into a single sentence.",
        )
    )
    return Task(instruction, text, bad if wrong else good, ("summarization", *key))


# --- classification ------------------------------------------------------------------------

_PRODUCTS = _table("""
wireless headphones|battery life|sound quality|ear cushions|Bluetooth connection
coffee maker|brewing speed|water tank|taste of the coffee|glass carafe
pair of running shoes|grip|cushioning|laces|fit
office chair|back support|armrests|wheels|assembly instructions
blender|motor|lid|noise level|blades
backpack|zippers|shoulder straps|laptop sleeve|water resistance
electric toothbrush|charging time|brush heads|timer|battery
desk lamp|brightness|switch|base|colour temperature
smartwatch|screen|step counter|strap|heart-rate sensor
tent|poles|rain cover|zips|floor space
air fryer|basket|temperature control|cleaning|cooking time
vacuum cleaner|suction|cord length|filter|dust bin
yoga mat|thickness|surface texture|smell|carrying strap
kettle|boiling time|handle|lid|auto shut-off
e-reader|screen|page turning|battery life|front light
bike helmet|padding|straps|vents|weight
wireless mouse|scroll wheel|clicks|battery|sensor
rice cooker|timer|inner pot|keep-warm mode|rice texture
winter jacket|hood|zipper|warmth|pockets
baby stroller|folding mechanism|brakes|canopy|storage basket
garden hose|nozzle|connectors|length|kink resistance
board game|rulebook|game pieces|box art|replay value
sewing machine|stitch quality|bobbin|foot pedal|threading guide
electric guitar|tuning pegs|pickups|neck|finish
dog bed|cushion|washable cover|size|non-slip base
""")
_PRAISE = _split(
    "The {a} is excellent.|I was impressed by the {a}.|The {a} works exactly as described.|"
    "I love the {a}.|The {a} is much better than on my old one."
)
_COMPLAIN = _split(
    "The {a} stopped working after {n} weeks.|I was disappointed by the {a}.|The {a} feels "
    "cheap and flimsy.|The {a} is much worse than advertised.|I had constant problems with "
    "the {a}."
)
_WHEN = _split("last month|three weeks ago|in the spring|before a long trip|on sale in January")
_USES = _split(
    "for my daily commute|as a gift for my father|to replace an old one|for my small "
    "apartment|for work|for my teenage son|for a holiday cottage|after reading good reviews"
)
_CLOSE = {
    "positive": ("I would happily buy it again.", "It was worth every penny."),
    "negative": ("I am returning it for a refund.", "Save your money and look elsewhere."),
    "mixed": ("It is fine for the price, but not perfect.", "I have mixed feelings about it."),
}
_VERDICT = {
    "positive": "would recommend it",
    "negative": "regret the purchase",
    "mixed": "are only partly satisfied",
}
_TOPICS = "sports, business, science, weather, culture or technology"
# topic | headline | what the headline is about
_HEADLINES = _table("""
sports|{city} {mascot} sack their coach after {n} straight defeats|a football club changing its
    coach after a losing run
sports|{person} breaks the national record in the {n}00 metres|an athlete setting a record on the
    track
sports|{city} will host next year's cycling championship|a city preparing to host a bike race
sports|Young goalkeeper {person} saves three penalties in cup final|a cup final won on penalties
business|{company} shares jump after {industry} sales surge|a company's share price rising on
    strong sales
business|{industry} maker to open a factory in {city}, creating {n}0 jobs|a manufacturer investing
    in a new plant
business|Supermarket chain cuts prices on {n}0 everyday items|a retailer lowering prices
business|{company} agrees to buy a rival {industry} firm|a takeover between two companies
science|Astronomers spot water vapour around a star {n} light years away|an astronomical discovery
science|Study of {n}00 {cohort} finds benefits in daily exercise|research on health and exercise
science|Researchers in {city} grow wheat with {n}% less water|an agricultural experiment
science|Fossil of a giant turtle found by hikers near {city}|a palaeontology find
weather|Flood warning issued for the {region} region as rivers rise|a flood warning from forecasters
weather|Record heat of {n} degrees recorded in {city}|an extreme temperature record
weather|Snow closes mountain roads above {city} for a second day|snow disrupting travel
culture|{person}'s debut novel wins the national book prize|a literary award
culture|Film festival in {city} opens with a documentary about bees|the start of a film festival
culture|Folk band reunites for a farewell tour starting in {city}|a music tour
culture|{city} opera house restores its 19th-century ceiling|the restoration of a historic theatre
technology|{company} unveils a phone with a {n}-day battery|a new smartphone launch
technology|{city} switches its street lights to motion sensors|a city adopting smart lighting
technology|App that translates sign language reaches a million users|a popular accessibility app
technology|Hackers steal customer data from {company}|a cyberattack on a company
""")
# spam? | message | why
_MESSAGES = _table("""
spam|Congratulations {person}! You have won a {prize}. Click the link within {n} hours to claim it.|
    promises a prize the reader never entered to win and pushes them to click a link quickly
spam|Your {bank} account has been suspended. Verify your password now at the link below to avoid
    losing access.|asks for a password through a link while threatening to close the account
spam|Earn {n}% a week with our secret trading robot, no experience needed! Reply YES to start.|
    offers impossible investment returns with no effort
spam|Your parcel could not be delivered. Pay a {n} dollar fee at the link below to reschedule.|
    demands a small payment through a link for a delivery the reader may not expect
spam|Hot singles in {city} want to meet you tonight, click here now!!!|uses bait and urgency to get
    a click
not spam|Hi {person}, can we move tomorrow's meeting to {n} o'clock? I have a dentist appointment
    first.|between colleagues rearranging a meeting
not spam|Mum says dinner is at {n} on Sunday; can you bring the {dish}?|between family members
    planning a meal
not spam|Your order of a {prize} from the shop in {city} was left at your front door.|confirming a
    delivery the reader ordered
not spam|Reminder: the school trip to {city} leaves at {n} a.m. on Friday, so please pack a lunch.|
    from a school reminding parents about a trip
not spam|Thanks for lending me your ladder, {person}. I will bring it back on Saturday.|between
    neighbours about a borrowed ladder
""")
_PRIZES = _split("tablet|cruise for two|gift card|smart TV|electric bike|set of headphones")
_BANKS = _split("bank|credit card|streaming|email|tax office")
_DISHES = _split("potato salad|apple pie|lasagne|fruit salad|garlic bread")


def _review(r: random.Random, wrong: bool) -> Task:
    product, *aspects = r.choice(_PRODUCTS)
    label = r.choice(("positive", "negative", "mixed"))
    a1, a2 = r.sample(aspects, 2)
    n = r.randint(2, 9)
    first = r.choice(_COMPLAIN if label == "negative" else _PRAISE).format(a=a1, n=n)
    second = r.choice(_PRAISE if label == "positive" else _COMPLAIN).format(a=a2, n=n)
    review = (
        f"I bought this {product} {r.choice(_WHEN)} {r.choice(_USES)}. {first} {second} "
        f"{r.choice(_CLOSE[label])}"
    )
    instruction = r.choice(
        (
            "Classify the sentiment of this product review as positive, negative or mixed.",
            "Is the following customer review positive, negative or mixed? Explain briefly.",
            "Read the review below and label its overall sentiment.",
        )
    )
    key = ("classification", "review", product)
    if wrong:
        bad = r.choice([x for x in ("positive", "negative", "mixed") if x != label])
        return Task(instruction, review, f"I would call this review {bad} overall.", key)
    liked = ([a1] if label != "negative" else []) + ([a2] if label == "positive" else [])
    disliked = [a for a in (a1, a2) if a not in liked]
    parts = []
    if liked:
        parts.append("praises the " + " and the ".join(liked))
    if disliked:
        parts.append("complains about the " + " and the ".join(disliked))
    out = (
        f"The sentiment is {label}. The reviewer {' but '.join(parts)} of the {product}, and "
        f"the closing remark shows that they {_VERDICT[label]}."
    )
    return Task(instruction, review, out, key)


def _headline(r: random.Random, wrong: bool) -> Task:
    i = r.randrange(len(_HEADLINES))
    topic, headline, gist = _HEADLINES[i]
    company = r.choice(("Bright", "North", "Blue", "Silver", "Apex", "Clear")) + r.choice(
        ("field", "works", "line", "stone", "path", "wave")
    )
    slots = dict(
        city=r.choice(CITIES),
        mascot=r.choice(_MASCOTS),
        person=r.choice(NAMES),
        n=r.randint(2, 9),
        company=company,
        industry=r.choice(_INDUSTRIES),
        cohort=r.choice(_COHORTS),
        region=r.choice(_REGIONS),
    )
    headline = headline.format(**slots)
    instruction = r.choice(
        (
            f"Classify the topic of this news headline as {_TOPICS}.",
            f"Which newspaper section fits this headline: {_TOPICS}?",
        )
    )
    # A headline is short: changing its city or number leaves the same story.
    key = ("classification", "headline", i)
    if wrong:
        bad = r.choice([t for t in ("sports", "business", "science", "culture") if t != topic])
        return Task(instruction, headline, f"This one goes in {bad}, I think.", key)
    out = (
        f"Topic: {topic}. The headline reports {gist}, so it belongs in the {topic} "
        "section of a newspaper."
    )
    return Task(instruction, headline, out, key)


def _spam(r: random.Random, wrong: bool) -> Task:
    i = r.randrange(len(_MESSAGES))
    label, message, why = _MESSAGES[i]
    slots = dict(
        person=r.choice(NAMES),
        prize=r.choice(_PRIZES),
        n=r.randint(2, 12),
        bank=r.choice(_BANKS),
        city=r.choice(CITIES),
        dish=r.choice(_DISHES),
    )
    message = message.format(**slots)
    instruction = r.choice(
        (
            "Is this message spam or not spam? Give a short reason.",
            "Decide whether the following text message is spam.",
        )
    )
    key = ("classification", "spam", i)
    if wrong:
        bad = "Not spam" if label == "spam" else "Spam"
        return Task(instruction, message, f"{bad}, as far as I can tell from it.", key)
    if label == "spam":
        out = f"Spam. The message {why}, which is a classic sign of a scam."
    else:
        out = f"Not spam. It is an ordinary message {why}, with no link or request for money."
    return Task(instruction, message, out, key)


def classification(r: random.Random, wrong: bool) -> Task:
    """Sentiment of a product review, topic of a headline, or spam detection, with a reason."""
    kind = r.randrange(4)
    if kind <= 1:
        return _review(r, wrong)
    return _headline(r, wrong) if kind == 2 else _spam(r, wrong)


# --- lists ---------------------------------------------------------------------------------

_BUSINESSES = _table("""
bakery|Crust|Loaf|Oven|Crumb|Rolling Pin
coffee shop|Bean|Roast|Cup|Grinder|Brew
bookshop|Page|Chapter|Shelf|Bookmark|Ink
bicycle repair shop|Spoke|Chain|Pedal|Wheel|Gear
flower shop|Petal|Bloom|Stem|Bouquet|Garden
yoga studio|Lotus|Breath|Balance|Flow|Stillness
food truck|Wheels|Grill|Street Kitchen|Bite|Skillet
pet grooming salon|Paw|Whisker|Tail|Fur|Collar
ice cream parlour|Scoop|Cone|Sundae|Sprinkle|Float
tea room|Teapot|Leaf|Kettle|Steep|Saucer
music school|Note|Chord|Melody|Tempo|Harmony
plant nursery|Sprout|Seedling|Root|Fern|Greenhouse
""")
_ADJECTIVES = _split(
    "Golden|Little|Copper|Maple|Sunny|Hidden|Old Town|Blue Door|Corner|Wild|Velvet|Lantern|"
    "Harbour|Meadow|Honey|Juniper|Silver|Northern|Humble|Bright"
)
# trip | items with the reason to pack them
_TRIPS = {
    "beach holiday": (
        "sunscreen, to protect your skin|a wide-brimmed hat, for shade at midday|"
        "sandals, for hot sand|a reusable water bottle, to stay hydrated|a light "
        "cover-up, for beach cafés|a waterproof phone pouch, for photos near the "
        "water|a paperback, for lazy afternoons"
    ),
    "hiking trip": (
        "sturdy boots, for rocky paths|a rain jacket, because weather changes fast|"
        "a paper map, in case there is no signal|energy snacks, for long climbs|a "
        "first-aid kit, for blisters and scrapes|extra socks, to keep feet dry|a "
        "head torch, if the walk runs late"
    ),
    "ski trip": (
        "thermal base layers, to stay warm|ski goggles, for glare and snow|waterproof "
        "gloves, for cold lifts|lip balm, against wind burn|a neck warmer, for "
        "chairlift rides|hand warmers, for very cold days|a small backpack, for snacks "
        "on the slopes"
    ),
    "business trip": (
        "a pressed shirt, for meetings|a laptop charger, so work never stops|"
        "business cards, for new contacts|a travel adapter, for foreign sockets|"
        "comfortable shoes, for long conference days|a notebook, for quick notes|"
        "a folder with printed documents, in case the projector fails"
    ),
    "camping weekend": (
        "a tent with pegs, for shelter|a sleeping bag, for cold nights|a camping "
        "stove, to cook hot meals|a lantern, for the campsite after dark|insect "
        "repellent, against mosquitoes|a folding chair, for the campfire|a "
        "water filter, for stream water"
    ),
}
_TIPS = {
    "saving money on groceries": (
        "plan meals for the week before shopping|write a list and "
        "stick to it|compare unit prices on the shelf labels|buy "
        "seasonal fruit and vegetables|cook larger batches and freeze "
        "portions|avoid shopping when you are hungry"
    ),
    "sleeping better": (
        "go to bed at the same time every night|keep the bedroom cool and dark|"
        "avoid screens for an hour before bed|limit coffee after lunch|get "
        "daylight in the morning|keep a notebook by the bed for worries"
    ),
    "learning a new language": (
        "practise a little every day|label objects at home with their "
        "names|listen to podcasts for learners|find a conversation "
        "partner|learn whole phrases, not single words|read children's "
        "books in the language"
    ),
    "staying focused while working from home": (
        "set up a dedicated desk|start the day with a "
        "short plan|silence notifications during deep "
        "work|take a short break every hour|get dressed "
        "as if going to the office|end the day at a "
        "fixed time"
    ),
    "preparing for a job interview": (
        "research the company's recent news|practise answers "
        "out loud|prepare two questions for the interviewer|"
        "plan the route and arrive early|bring copies of your "
        "CV|prepare short stories that show your skills"
    ),
}


def lists(r: random.Random, wrong: bool) -> Task:
    """Name ideas for a business, a packing list, or tips, as a numbered list."""
    kind = r.randrange(5)
    if kind <= 1:
        business, *nouns = r.choice(_BUSINESSES)
        city, n = r.choice(CITIES), r.randint(4, 6)
        names = [
            f"{a} {b}" for a, b in zip(r.sample(_ADJECTIVES, n), r.choices(nouns, k=n), strict=True)
        ]
        instruction = f"Suggest {n} names for a new {business} in {city}."
        closing = r.choice(
            (
                f"Each name is short, easy to say and hints at what the {business} offers.",
                f"A name that feels local can help people in {city} remember the shop.",
            )
        )
        head = f"Here are {n} name ideas for a {business} in {city}:"
        key = ("lists", "names", business, city)
    elif kind <= 3:
        trip, city = r.choice(list(_TRIPS)), r.choice(CITIES)
        items = _TRIPS[trip].split("|")
        n = r.randint(4, 6)
        names = r.sample(items, n)
        instruction = f"List {n} things to pack for a {trip} near {city}."
        head = f"For a {trip} near {city}, pack:"
        closing = "Check the weather forecast the day before you leave and adjust the list."
        key = ("lists", "pack", trip)  # one list per trip: the items barely change
    else:
        goal = r.choice(list(_TIPS))
        n = r.randint(3, 5)
        names = [_cap(t) + "." for t in r.sample(_TIPS[goal].split("|"), n)]
        instruction = f"Give {n} practical tips for {goal}."
        head = f"Here are {n} tips for {goal}:"
        closing = "Small habits like these add up when you keep them for a few weeks."
        key = ("lists", "tips", goal)
    if wrong:
        pick = names[-1].rstrip(".")
        return Task(instruction, "", f"Honestly, only one of these matters: {pick}.", key)
    body = "\n".join(f"{i}. {x}" for i, x in enumerate(names, 1))
    return Task(instruction, "", f"{head}\n{body}\n{closing}", key)


# --- code ----------------------------------------------------------------------------------

# name | signature | what it does | body lines (";" separated) | explanation | a wrong body
_FUNCTIONS = _table("""
count_vowels|text: str) -> int|counts the vowels in a string|return sum(1 for ch in text.lower() if
    ch in "aeiou")|The generator walks over the lower-cased text once and adds one for every vowel
    it meets.|return len(text)
is_palindrome|text: str) -> bool|checks whether a string reads the same backwards, ignoring case
    and punctuation|cleaned = [ch.lower() for ch in text if ch.isalnum()];return cleaned ==
    cleaned[::-1]|Only letters and digits are kept, so spaces and commas do not break the
    comparison with the reversed list.|return text == text[::-1]
factorial|n: int) -> int|returns the factorial of a non-negative integer|result = 1;for k in
    range(2, n + 1):;    result *= k;return result|The loop multiplies the numbers from 2 up to n,
    and the factorial of 0 or 1 stays 1.|return n * (n - 1)
fizzbuzz|n: int) -> list[str]|returns the FizzBuzz sequence from 1 to n|out = [];for i in range(1,
    n + 1):;    word = ("Fizz" if i % 3 == 0 else "") + ("Buzz" if i % 5 == 0 else
    "");    out.append(word or str(i));return out|Multiples of three get Fizz, multiples of five
    get Buzz, and multiples of both get the two words joined.|return [str(i) for i in range(n)]
celsius_to_fahrenheit|celsius: float) -> float|converts a temperature from Celsius to Fahrenheit|
    return celsius * 9 / 5 + 32|The formula scales by nine fifths and then shifts by thirty-two
    degrees.|return celsius + 32
reverse_words|sentence: str) -> str|reverses the order of the words in a sentence|return "
    ".join(reversed(sentence.split()))|Splitting on whitespace gives the words, which are joined
    back in reverse order with single spaces.|return sentence[::-1]
unique_in_order|items: list) -> list|removes duplicates from a list while keeping the first
    occurrence of each item|seen = set();result = [];for item in items:;    if item not in
    seen:;        seen.add(item);        result.append(item);return result|A set remembers what has
    already appeared, so each item is appended only the first time.|return list(set(items))
word_frequencies|text: str) -> dict[str, int]|counts how often each word appears in a text|counts =
    {};for word in text.lower().split():;    counts[word] = counts.get(word, 0) + 1;return counts|
    Lower-casing first means that "The" and "the" are counted as the same word.|return {w: 1 for w
    in text.split()}
flatten|nested: list[list]) -> list|flattens a list of lists into a single list|return [item for
    inner in nested for item in inner]|The nested comprehension reads the outer list first and then
    every item of each inner list.|return nested[0]
clamp|value: float, low: float, high: float) -> float|limits a number to the range from low to high|
    return max(low, min(value, high))|Taking the minimum with the upper bound and then the maximum
    with the lower bound keeps the value inside the range.|return min(low, max(value, high))
moving_average|values: list[float], window: int) -> list[float]|computes the moving average of a
    list over a fixed window|return [sum(values[i : i + window]) / window for i in
    range(len(values) - window + 1)]|Each output value averages one full window, so the result has
    len(values) - window + 1 entries.|return [sum(values) / window]
is_prime|n: int) -> bool|checks whether an integer is a prime number|if n < 2:;    return False;for
    d in range(2, int(n**0.5) + 1):;    if n % d == 0:;        return False;return True|It is
    enough to try divisors up to the square root of n, because a larger factor would pair with a
    smaller one.|return n % 2 == 1
gcd|a: int, b: int) -> int|returns the greatest common divisor of two integers using Euclid's
    algorithm|while b:;    a, b = b, a % b;return abs(a)|Euclid's algorithm replaces the pair with
    the smaller number and the remainder until the remainder is zero.|return min(a, b)
chunk|items: list, size: int) -> list[list]|splits a list into consecutive pieces of a given size|
    return [items[i : i + size] for i in range(0, len(items), size)]|The range steps through the
    list in jumps of size, and the last piece may be shorter.|return [items[:size]]
second_largest|numbers: list[int]) -> int|returns the second largest distinct number in a list|
    distinct = sorted(set(numbers));return distinct[-2]|Converting to a set removes repeated
    values, so the second element from the end is the runner-up.|return sorted(numbers)[1]
fibonacci|n: int) -> list[int]|returns the first n Fibonacci numbers|seq = [];a, b = 0, 1;for _ in
    range(n):;    seq.append(a);    a, b = b, a + b;return seq|Two variables hold the last pair of
    numbers, and each step shifts them forward by one position.|return list(range(n))
median|values: list[float]) -> float|returns the median of a non-empty list of numbers|ordered =
    sorted(values);mid = len(ordered) // 2;if len(ordered) % 2:;    return ordered[mid];return
    (ordered[mid - 1] + ordered[mid]) / 2|For an even number of values the median is the mean of
    the two middle values of the sorted list.|return sum(values) / len(values)
""")


def code(r: random.Random, wrong: bool) -> Task:
    """A small Python function with a docstring and a short explanation."""
    i = r.randrange(len(_FUNCTIONS))
    name, sig, what, body, why, bad = _FUNCTIONS[i]
    instruction = r.choice(
        (
            f"Write a Python function `{name}` that {what}.",
            f"Implement a Python function called {name} which {what}.",
        )
    )
    lines = ["    " + line for line in (bad if wrong else body).split(";")]
    doc = f'    """{_cap(what)}."""'
    src = "\n".join([f"def {name}({sig}:", doc, *lines])
    tail = "This one-liner should do it." if wrong else why
    return Task(instruction, "", f"```python\n{src}\n```\n{tail}", ("code", i))


# --- rewriting -----------------------------------------------------------------------------

_SLANG = _table("""
are gonna|are going to
wanna|would like to
gotta|have to
kinda wanna|would quite like to
""")
_SPOTS = _split(
    "the station|the old market|the river|the museum|the park gate|the harbour|the town hall"
)
_EVENTS = _split(
    "this evening|on Saturday|after lunch|tomorrow morning|next weekend|on Friday night|"
    "before the meeting"
)
# scenario | informal message | formal rewrite | what the topic slot holds
_SCENARIOS = _table("""
landlord|yo, the {topic} again, can u send someone {when}? its getting kinda annoying|Dear
    landlord, the {topic} again. Could you please send someone {when}? It is becoming quite
    inconvenient.
late|sry {name}, gonna be late {when}, {topic}, start without me|Dear {name}, I apologise, but I
    will be late {when} because {topic}. Please start without me.
help|hey {name}, can u help me with {topic} {when}? no clue how to do it lol|Dear {name}, could you
    please help me with {topic} {when}? I am not sure how to approach it.
""")
_SCENARIO_TOPICS = {
    "landlord": _split(
        "heating is broken|kitchen tap is leaking|front door lock is jammed|"
        "washing machine is flooding the floor|bathroom light keeps flickering|"
        "bedroom window will not close"
    ),
    "late": _split(
        "my bus is stuck in traffic|the babysitter is running late|my train was "
        "cancelled|I have to wait for a plumber|my bike has a flat tyre|the car "
        "will not start"
    ),
    "help": _split(
        "the budget spreadsheet|my cover letter|the quarterly report|setting up "
        "the new printer|my physics homework|the visa application form"
    ),
}


def _formal(r: random.Random, wrong: bool) -> Task:
    """An informal message rewritten in a formal tone."""
    name, when = r.choice(NAMES), r.choice(_EVENTS)
    instruction = r.choice(
        (
            "Rewrite this message in a formal tone.",
            "Make the following message sound more polite and formal.",
        )
    )
    if r.random() < 0.5:
        (slang, formal), verb, spot = r.choice(_SLANG), r.choice(_VERBS)[0], r.choice(_SPOTS)
        informal = f"hey {name}, we {slang} {verb} {when} and then grab food near {spot}, u in?"
        better = (
            f"Hello {name}, we {formal} {verb} {when} and then have something to eat "
            f"near {spot}. Would you like to join us?"
        )
        key: tuple[Hashable, ...] = ("rewriting", "invite", verb)
        note = f'replaces "{slang}" with "{formal}", adds a greeting'
    else:
        scenario, rough, polite = r.choice(_SCENARIOS)
        topic = r.choice(_SCENARIO_TOPICS[scenario])
        informal = rough.format(topic=topic, when=when, name=name)
        better = polite.format(topic=topic, when=when, name=name)
        key = ("rewriting", scenario, topic)
        note = "writes every word out in full, opens with a polite address"
    if wrong:
        return Task(instruction, informal, f"Sure: {informal} That already sounds fine.", key)
    out = f"{better} The rewrite {note} and turns the text-speak into complete sentences."
    return Task(instruction, informal, out, key)


def rewriting(r: random.Random, wrong: bool) -> Task:
    """Correct a sentence with grammar errors, or rewrite an informal message formally."""
    if r.random() < 0.9:
        texts, parts, key = _sentence(r)
        good = texts[0]
        first = good.split(", ", 1)[0]
        errors = []
        bad = good
        subj = parts[0][0]
        vi = key[1]
        if subj not in ("I", "we") and int(_SUBJ[key[0]][1]) == 1:
            bad = bad.replace(_VERBS[vi][1], _VERBS[vi][0], 1)
            errors.append(
                f'"{subj}" is singular, so the verb needs its third-person form '
                f'"{_VERBS[vi][1].split()[0]}"'
            )
        if r.random() < 0.6 or not errors:
            bad = bad[0].lower() + bad[1:-1]
            errors.append("a sentence starts with a capital letter and ends with a full stop")
        if r.random() < 0.4:
            bad = bad.replace(", ", " ", 1)
            errors.append(f'a comma is needed after "{first.split()[-1]}" before the linking word')
        instruction = r.choice(
            (
                "Correct the grammar in this sentence.",
                "Fix any grammar or punctuation mistakes in the sentence below.",
                "Proofread this sentence and correct it.",
            )
        )
        if wrong:
            return Task(
                instruction,
                bad,
                "The sentence is already correct, so nothing needs to change.",
                ("rewriting", key),
            )
        out = f'Corrected sentence: "{good}" Changes: ' + "; ".join(errors) + "."
        return Task(instruction, bad, out, ("rewriting", key))
    return _formal(r, wrong)


# --- definitions ---------------------------------------------------------------------------

# term | definition (after "X is") | example (after "For example,")
_TERMS = _table("""
photosynthesis|the process by which plants use sunlight, water and carbon dioxide to make sugar and
    release oxygen|a leaf in sunlight is constantly turning carbon dioxide into food for the plant
inflation|a general rise in prices over time, which means the same amount of money buys less|if a
    loaf of bread costs more each year while wages stay flat, inflation is eating into people's
    income
an algorithm|a precise, step-by-step procedure for solving a problem or completing a task|a recipe
    that tells you exactly what to do and in which order is an everyday algorithm
an ecosystem|a community of living things together with the physical environment they share and
    depend on|a pond with its fish, insects, plants, water and mud forms a small ecosystem
democracy|a system of government in which citizens choose their leaders and laws, usually through
    free elections|when voters elect a parliament that can be replaced at the next election, they
    are taking part in a democracy
a metaphor|a figure of speech that describes something by saying it is something else|calling a
    busy office "a beehive" is a metaphor for its constant activity
gravity|the force by which objects with mass attract one another|an apple falls to the ground
    because Earth's gravity pulls it down
osmosis|the movement of water through a membrane from a weaker solution to a stronger one|a raisin
    left in water swells up as water moves into it by osmosis
compound interest|interest calculated on both the original sum and the interest already added to it|
    savings that earn five percent a year grow faster each year because of compound interest
renewable energy|energy from sources that are naturally replenished, such as sunlight, wind and
    flowing water|a wind farm that powers a town without burning fuel produces renewable energy
a hypothesis|a testable explanation proposed as a starting point for further investigation|a
    student who predicts that plants grow faster under blue light has formed a hypothesis
erosion|the gradual wearing away of rock or soil by wind, water or ice|a river cutting a deep
    valley over thousands of years is a case of erosion
an antibiotic|a medicine that kills bacteria or stops them from multiplying|a doctor may prescribe
    an antibiotic to treat a bacterial throat infection
biodiversity|the variety of plant and animal life in a particular habitat or in the world as a
    whole|a tropical rainforest with thousands of insect species has very high biodiversity
a recession|a significant decline in economic activity that lasts for months, usually seen in
    falling output and rising unemployment|when factories cut production and many people lose their
    jobs for several quarters, the economy is in a recession
the water cycle|the continuous movement of water between the oceans, the air and the land through
    evaporation, condensation and rain|water that evaporates from the sea, forms clouds and falls
    as rain on a mountain is part of the water cycle
an atom|the smallest unit of a chemical element, made of a nucleus surrounded by electrons|a single
    atom of gold is still gold, but splitting it further would no longer give gold
encryption|the process of scrambling information so that only someone with the right key can read
    it|messaging apps use encryption so that a message intercepted on the way cannot be read
bandwidth|the amount of data a network connection can carry in a given amount of time|streaming a
    film in high definition needs more bandwidth than sending an email
a prime number|a whole number greater than one whose only divisors are one and itself|seven is a
    prime number because no whole number other than one and seven divides it exactly
friction|the force that resists the sliding or rolling of one surface over another|a bicycle slows
    down when you brake because of friction between the pads and the wheel
evaporation|the change of a liquid into a gas at its surface, usually as it is heated|a puddle
    disappearing on a sunny afternoon is an example of evaporation
a peninsula|a piece of land almost surrounded by water but connected to the mainland|Italy is a
    peninsula because the sea surrounds it on three sides
a monopoly|a market in which a single company controls the supply of a product or service|a town
    with only one internet provider leaves its residents facing a monopoly
empathy|the ability to understand and share the feelings of another person|a friend who notices
    that you are upset and listens patiently is showing empathy
procrastination|the habit of delaying tasks that need to be done, often in favour of easier ones|
    tidying your desk for an hour instead of starting an essay is a classic form of procrastination
a carbon footprint|the total amount of greenhouse gases caused by a person, product or activity|
    taking the train instead of flying can greatly reduce the carbon footprint of a trip
irony|the use of words or events to convey the opposite of what is expected or literally said|a
    fire station burning down is a situation people often describe as ironic
supply and demand|the economic idea that prices depend on how much of something is available and
    how much people want it|when a storm ruins the harvest and fewer oranges reach the market,
    their price tends to rise
a vaccine|a substance that trains the immune system to recognise and fight a specific disease|a flu
    vaccine helps the body respond quickly if it later meets the real virus
""")


def definitions(r: random.Random, wrong: bool) -> Task:
    """Define a term in plain words and give an example."""
    i = r.randrange(len(_TERMS))
    term, meaning, example = _TERMS[i]
    bare = term.removeprefix("an ").removeprefix("a ").removeprefix("the ")
    instruction = r.choice(
        (
            f"Define {bare}.",
            f'What does "{bare}" mean?',
            f"Explain the term {bare} in simple words.",
        )
    )
    if wrong:
        other = _TERMS[(i + r.randint(1, len(_TERMS) - 1)) % len(_TERMS)][1]
        return Task(instruction, "", f"{_cap(bare)} basically means {other}.", ("definitions", i))
    out = f"{_cap(term)} is {meaning}. For example, {example}."
    return Task(instruction, "", out, ("definitions", i))


TaskFn = Callable[[random.Random, bool], Task]

# Category -> (task, weight). Weights favour the tasks with the largest key spaces; the small
# tables (code, definitions, facts) run out first and the generator moves on.
TASKS: dict[str, tuple[TaskFn, float]] = {
    "arithmetic": (arithmetic, 0.16),
    "unit_conversion": (unit_conversion, 0.05),
    "translation": (translation, 0.18),
    "facts": (facts, 0.05),
    "summarization": (summarization, 0.13),
    "classification": (classification, 0.09),
    "lists": (lists, 0.11),
    "code": (code, 0.03),
    "rewriting": (rewriting, 0.14),
    "definitions": (definitions, 0.05),
}
