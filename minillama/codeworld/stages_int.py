"""Stages over ``int``: arithmetic, digits, counting loops, number tests, ranges, text of numbers."""

from __future__ import annotations

from .stage import chars, guard, ints, need, whole

I = "int"


def _factorial(n):
    need(0 <= n <= 10)
    guard(n <= 20)
    out = 1
    for k in range(2, n + 1):
        out *= k
    return out


def _fib(n):
    need(0 <= n <= 25)
    guard(n <= 80)
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def _collatz(n):
    need(1 <= n <= 60)
    guard(1 <= n <= 10**4)
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def _gcd(n, c):
    a, b = abs(n), c
    while b:
        a, b = b, a % b
    return a


def _prime(n):
    need(-5 <= n <= 200)
    guard(n <= 10**5)
    return n > 1 and all(n % d for d in range(2, n))


def _is_square(n):
    need(0 <= n <= 400)
    guard(n <= 10**6)
    i = 0
    while i * i < n:
        i += 1
    return i * i == n


def _bounded(lo, hi, cap=1000, floor=None):
    """The world's domain lo..hi. Outside it the code goes on, and the reference with it
    (under ``lenient``) as far as every rendering computes the same: up to a safety cap,
    and down to ``floor`` (below it renderings differ, e.g. a formula and a loop on n < 0)."""
    def check(n):
        need(lo <= n <= hi)
        top = max(cap, hi)
        guard((-top if floor is None else floor) <= n <= top)
        return n
    return check


def _small(n):
    need(-1000 <= n <= 1000)
    return n


NUMBER_STAGES = [
    whole("abs_i", I, I, abs, ["the absolute value of {X}", "{X} without its sign"],
          ["take the absolute value of {X}"], ["absolute", "magnitude"],
          exprs=["abs({e})", "{e} if {e} >= 0 else -{e}"],
          blocks=["{out} = {e}\nif {out} < 0:\n    {out} = -{out}"],
          finals=["if {e} < 0:\n    return -{e}\nreturn {e}"], var="size"),
    whole("square_i", I, I, lambda n: _small(n) * n, ["the square of {X}", "{X} multiplied by itself"],
          ["square {X}"], ["square", "squared"], exprs=["{e} * {e}", "{e} ** 2"], var="square"),
    whole("add_i", I, I, lambda n, c: n + c, ["{X} plus {c0}", "the sum of {X} and {c0}"], ["add {c0} to {X}"],
          ["plus", "add", "increase"], exprs=["{e} + {c0}"], consts=[ints(1, 9, "k", "step", "offset")], var="bigger"),
    whole("sub_i", I, I, lambda n, c: n - c, ["{X} minus {c0}", "{X} decreased by {c0}"], ["subtract {c0} from {X}"],
          ["minus", "decrease"], exprs=["{e} - {c0}"], consts=[ints(1, 9, "k", "step", "offset")], var="smaller"),
    whole("mul_i", I, I, lambda n, c: n * c, ["{X} times {c0}", "the product of {X} and {c0}"],
          ["multiply {X} by {c0}"], ["times", "multiply", "scale"], exprs=["{e} * {c0}"],
          consts=[ints(2, 9, "factor", "k", "m")], var="product"),
    whole("floordiv_i", I, I, lambda n, c: n // c, ["{X} divided by {c0}, rounded down", "the floor of {X} over {c0}"],
          ["divide {X} by {c0}, rounding down"], ["divide", "quotient"], exprs=["{e} // {c0}"],
          consts=[ints(2, 9, "divisor", "k", "d")], var="quotient"),
    whole("mod_i", I, I, lambda n, c: n % c, ["the remainder of {X} divided by {c0}", "{X} modulo {c0}"],
          ["take {X} modulo {c0}"], ["remainder", "mod"], exprs=["{e} % {c0}"],
          consts=[ints(2, 9, "divisor", "m", "base")], var="remainder"),
    whole("factorial", I, I, _factorial, ["the factorial of {X}", "the product of the numbers from 1 to {X}"],
          ["compute the factorial of {X}"], ["factorial", "fact"],
          blocks=["{out} = 1\nfor {i} in range(2, {e} + 1):\n    {out} *= {i}",
                  "{out} = 1\n{i} = {e}\nwhile {i} > 1:\n    {out} *= {i}\n    {i} -= 1"], var="result"),
    whole("triangle", I, I, lambda n: _bounded(0, 200, floor=0)(n) * (n + 1) // 2,
          ["the sum of the numbers from 1 to {X}", "the {X}-th triangular number"],
          ["add up the numbers from 1 to {X}"], ["triangle", "sum_up_to", "triangular"],
          exprs=["{e} * ({e} + 1) // 2", "sum(range({e} + 1))"],
          blocks=["{out} = 0\nfor {i} in range(1, {e} + 1):\n    {out} += {i}"], var="total"),
    whole("num_digits", I, I, lambda n: len(str(abs(n))), ["the number of digits of {X}", "how many digits {X} has"],
          ["count the digits of {X}"], ["digit_count", "num_digits", "length"], exprs=["len(str(abs({e})))"],
          blocks=["{out} = 1\nrest = abs({e})\nwhile rest >= 10:\n    rest //= 10\n    {out} += 1"], var="count"),
    whole("reverse_digits", I, I, lambda n: int(str(_bounded(0, 10**6, floor=0)(n))[::-1]),
          ["{X} with its digits in reverse order", "the number whose digits are those of {X} reversed"],
          ["reverse the digits of {X}"], ["reverse_digits", "mirror", "reversed_number"],
          exprs=["int(str({e})[::-1])"],
          blocks=["{out} = 0\nrest = {e}\nwhile rest > 0:\n    {out} = {out} * 10 + rest % 10\n    rest //= 10"],
          var="flipped"),
    whole("fib", I, I, _fib, ["the {X}-th Fibonacci number", "Fibonacci number number {X} (starting 0, 1, 1, 2)"],
          ["compute the {X}-th Fibonacci number"], ["fibonacci", "fib"],
          blocks=["a, b = 0, 1\nfor _ in range({e}):\n    a, b = b, a + b\n{out} = a"], var="value"),
    whole("collatz", I, I, _collatz,
          ["the number of Collatz steps from {X} down to 1", "how many halve-or-triple-plus-one steps take {X} to 1"],
          ["count the Collatz steps needed to bring {X} to 1"], ["collatz_steps", "collatz"],
          blocks=["{out} = 0\nrest = {e}\nwhile rest != 1:\n    if rest % 2 == 0:\n        rest = rest // 2\n"
                  "    else:\n        rest = 3 * rest + 1\n    {out} += 1"], var="steps"),
    whole("gcd", I, I, _gcd, ["the greatest common divisor of {X} and {c0}", "the largest number dividing both {X} and {c0}"],
          ["compute the greatest common divisor of {X} and {c0}"], ["gcd", "common_divisor"],
          blocks=["a, b = abs({e}), {c0}\nwhile b:\n    a, b = b, a % b\n{out} = a"],
          consts=[ints(2, 12, "other", "m", "k")], var="divisor", heldout=True),
    whole("sign", I, I, lambda n: (n > 0) - (n < 0), ["the sign of {X} (-1, 0 or 1)", "1, 0 or -1 depending on the sign of {X}"],
          ["find the sign of {X}"], ["sign", "signum"], exprs=["({e} > 0) - ({e} < 0)"],
          blocks=["if {e} > 0:\n    {out} = 1\nelif {e} < 0:\n    {out} = -1\nelse:\n    {out} = 0"],
          finals=["if {e} > 0:\n    return 1\nif {e} < 0:\n    return -1\nreturn 0"], var="sign"),
    whole("clamp", I, I, lambda n, a, b: max(a, min(n, b)),
          ["{X} limited to the range from {c0} to {c1}", "{X} clamped between {c0} and {c1}"],
          ["clamp {X} to lie between {c0} and {c1}"], ["clamp", "clamped", "bounded"],
          exprs=["max({c0}, min({e}, {c1}))", "min(max({e}, {c0}), {c1})"],
          blocks=["if {e} < {c0}:\n    {out} = {c0}\nelif {e} > {c1}:\n    {out} = {c1}\nelse:\n    {out} = {e}"],
          finals=["if {e} < {c0}:\n    return {c0}\nif {e} > {c1}:\n    return {c1}\nreturn {e}"],
          consts=[ints(-5, 0, "low", "lo", "floor"), ints(3, 10, "high", "hi", "ceiling")], var="clamped"),
    whole("dist", I, I, lambda n, c: abs(n - c), ["the distance between {X} and {c0}", "how far {X} is from {c0}"],
          ["measure the distance from {X} to {c0}"], ["distance", "gap"], exprs=["abs({e} - {c0})"],
          blocks=["{out} = {e} - {c0}\nif {out} < 0:\n    {out} = -{out}"], consts=[ints(-5, 9, "target", "center", "k")],
          var="distance"),
    whole("power2", I, I, lambda n: 2 ** _bounded(0, 16, 64, floor=0)(n), ["2 raised to the power {X}", "two to the {X}"],
          ["raise 2 to the power {X}"], ["power_of_two", "two_to_the"], exprs=["2 ** {e}"],
          blocks=["{out} = 1\nfor _ in range({e}):\n    {out} *= 2"], var="power"),
]

PREDICATES = [
    whole("is_even_i", I, "bool", lambda n: n % 2 == 0, ["True if {X} is even, else False", "whether {X} is even"],
          ["check whether {X} is even"], ["is_even", "even"], exprs=["{e} % 2 == 0"],
          finals=["if {e} % 2 == 0:\n    return True\nreturn False"], var="even"),
    whole("is_odd_i", I, "bool", lambda n: n % 2 == 1, ["True if {X} is odd, else False", "whether {X} is odd"],
          ["check whether {X} is odd"], ["is_odd", "odd"], exprs=["{e} % 2 == 1", "{e} % 2 != 0"],
          finals=["if {e} % 2 == 1:\n    return True\nreturn False"], var="odd"),
    whole("is_pos_i", I, "bool", lambda n: n > 0, ["True if {X} is positive, else False", "whether {X} is greater than 0"],
          ["check whether {X} is positive"], ["is_positive", "positive"], exprs=["{e} > 0"], var="positive"),
    whole("is_neg_i", I, "bool", lambda n: n < 0, ["True if {X} is negative, else False", "whether {X} is below 0"],
          ["check whether {X} is negative"], ["is_negative", "negative"], exprs=["{e} < 0"], var="negative"),
    whole("divisible", I, "bool", lambda n, c: n % c == 0,
          ["True if {X} is divisible by {c0}, else False", "whether {c0} divides {X}"],
          ["check whether {X} is a multiple of {c0}"], ["divisible", "is_multiple"], exprs=["{e} % {c0} == 0"],
          finals=["if {e} % {c0} == 0:\n    return True\nreturn False"],
          consts=[ints(2, 9, "divisor", "k", "d")], var="ok"),
    whole("is_prime", I, "bool", _prime, ["True if {X} is a prime number, else False", "whether {X} is prime"],
          ["check whether {X} is prime"], ["is_prime", "prime"],
          exprs=["{e} > 1 and all({e} % d for d in range(2, {e}))"],
          finals=["if {e} < 2:\n    return False\nfor d in range(2, {e}):\n    if {e} % d == 0:\n        return False\n"
                  "return True"], var="prime"),
    whole("is_square", I, "bool", _is_square,
          ["True if {X} is a perfect square, else False", "whether {X} is the square of a whole number"],
          ["check whether {X} is a perfect square"], ["is_square", "perfect_square"],
          exprs=["any(k * k == {e} for k in range({e} + 1))"],
          finals=["k = 0\nwhile k * k < {e}:\n    k += 1\nreturn k * k == {e}"], var="square"),
    whole("between", I, "bool", lambda n, a, b: a <= n <= b,
          ["True if {X} lies between {c0} and {c1} inclusive, else False", "whether {c0} <= {X} <= {c1}"],
          ["check whether {X} is in the range {c0} to {c1}"], ["between", "in_range"],
          exprs=["{c0} <= {e} <= {c1}", "{e} >= {c0} and {e} <= {c1}"],
          finals=["if {e} < {c0} or {e} > {c1}:\n    return False\nreturn True"],
          consts=[ints(-5, 2, "low", "lo", "start"), ints(3, 10, "high", "hi", "stop")], var="inside"),
]

SEQUENCES = [
    whole("digits", I, "list", lambda n: [int(d) for d in str(abs(n))],
          ["the digits of {X}", "the list of digits of {X}, most significant first"], ["split {X} into its digits"],
          ["digits", "digit_list"], exprs=["[int(d) for d in str(abs({e}))]", "list(map(int, str(abs({e}))))"],
          blocks=["{out} = []\nfor d in str(abs({e})):\n    {out}.append(int(d))"], var="digits"),
    whole("range0", I, "list", lambda n: list(range(_bounded(0, 30)(n))),
          ["the numbers from 0 up to but not including {X}", "the list 0, 1, ..., {X} - 1"],
          ["list the numbers below {X}, starting at 0"], ["numbers_below", "range_list", "upto"],
          exprs=["list(range({e}))", "[{i} for {i} in range({e})]"],
          blocks=["{out} = []\n{i} = 0\nwhile {i} < {e}:\n    {out}.append({i})\n    {i} += 1"], var="numbers"),
    whole("range1", I, "list", lambda n: list(range(1, _bounded(0, 30)(n) + 1)),
          ["the numbers from 1 to {X}", "the list 1, 2, ..., {X}"], ["list the numbers from 1 to {X}"],
          ["one_to", "count_up", "first_n"], exprs=["list(range(1, {e} + 1))"],
          blocks=["{out} = []\nfor {i} in range(1, {e} + 1):\n    {out}.append({i})"], var="numbers"),
    whole("divisors", I, "list", lambda n: [d for d in range(1, _bounded(1, 200)(n) + 1) if n % d == 0],
          ["the divisors of {X}", "the positive numbers that divide {X}"], ["list the divisors of {X}"],
          ["divisors", "factors"], exprs=["[d for d in range(1, {e} + 1) if {e} % d == 0]"],
          blocks=["{out} = []\nfor d in range(1, {e} + 1):\n    if {e} % d == 0:\n        {out}.append(d)"],
          var="divisors"),
    whole("multiples_of", I, "list", lambda n, c: [c * k for k in range(1, _bounded(0, 20)(n) + 1)],
          ["the first {X} multiples of {c0}", "{c0}, 2 * {c0}, ..., {X} * {c0}"], ["list the first {X} multiples of {c0}"],
          ["multiples", "table"], exprs=["[{c0} * {i} for {i} in range(1, {e} + 1)]"],
          blocks=["{out} = []\nfor {i} in range(1, {e} + 1):\n    {out}.append({c0} * {i})"],
          consts=[ints(2, 9, "base", "step", "k")], var="table"),
]

TEXTS = [
    whole("to_str", I, "str", str, ["{X} written as a string", "the decimal text of {X}"], ["turn {X} into a string"],
          ["as_string", "to_text", "stringify"], exprs=["str({e})"], var="text"),
    whole("binary", I, "str", lambda n: bin(_bounded(0, 4096, floor=0)(n))[2:],
          ["{X} written in binary", "the binary digits of {X}"], ["write {X} in base 2"], ["binary", "to_binary"],
          exprs=["bin({e})[2:]", "format({e}, 'b')"],
          blocks=["{out} = ''\nrest = {e}\nwhile rest > 0:\n    {out} = str(rest % 2) + {out}\n    rest //= 2\n"
                  "if {out} == '':\n    {out} = '0'"], var="bits"),
    whole("bar", I, "str", lambda n, c: c * _bounded(0, 20)(n),
          ["a string of {X} copies of {c0}", "{c0} repeated {X} times"], ["build a string of {X} characters {c0}"],
          ["bar", "line_of", "stars"], exprs=["{c0} * {e}"],
          blocks=["{out} = ''\nfor _ in range({e}):\n    {out} += {c0}"], consts=[chars("*#-=x", "symbol", "char", "mark")],
          var="bar"),
]

STAGES = NUMBER_STAGES + PREDICATES + SEQUENCES + TEXTS
