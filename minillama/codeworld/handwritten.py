"""Thirty hand-written problems no generator of the project produced: typical first exercises
(accumulators, conditionals, early returns, searching, counting, string building, integer
arithmetic, functions of two or three arguments), in HumanEval's format.

They measure transfer out of the code world: the wording, names, signatures and edge cases
are written by hand, several problems need an idiom the world never writes (``elif``
chains for FizzBuzz, a leap-year rule, two-variable loops), and none was used to design the
world's templates after being written.
"""

from __future__ import annotations

_PROBLEMS = [
    ("sum_of_evens", '''def sum_of_evens(numbers: list[int]) -> int:
    """Return the sum of all even numbers in the list.

    >>> sum_of_evens([1, 2, 3, 4])
    6
    """
''', '''    return sum(n for n in numbers if n % 2 == 0)
''', ["([]) == 0", "([1, 3, 5]) == 0", "([2, 4, 6]) == 12", "([-2, 3, 8]) == 6", "([0, 7, 10, 11]) == 10"]),
    ("factorial", '''def factorial(n: int) -> int:
    """Return n! for a non-negative integer n (0! is 1).

    >>> factorial(4)
    24
    """
''', '''    result = 1
    for k in range(2, n + 1):
        result *= k
    return result
''', ["(0) == 1", "(1) == 1", "(5) == 120", "(3) == 6", "(7) == 5040"]),
    ("is_palindrome", '''def is_palindrome(text: str) -> bool:
    """Check whether text reads the same forwards and backwards.

    >>> is_palindrome('racecar')
    True
    """
''', '''    return text == text[::-1]
''', ["('') == True", "('ab') == False", "('noon') == True", "('level') == True", "('python') == False"]),
    ("clamp", '''def clamp(value: int, low: int, high: int) -> int:
    """Limit value to the interval [low, high].

    >>> clamp(15, 0, 10)
    10
    """
''', '''    if value < low:
        return low
    if value > high:
        return high
    return value
''', ["(5, 0, 10) == 5", "(-3, 0, 10) == 0", "(15, 0, 10) == 10", "(0, 0, 0) == 0", "(7, 8, 9) == 8"]),
    ("running_sum", '''def running_sum(nums: list[int]) -> list[int]:
    """Return a list whose i-th element is the sum of nums[0] through nums[i].

    >>> running_sum([1, 2, 3])
    [1, 3, 6]
    """
''', '''    out = []
    total = 0
    for n in nums:
        total += n
        out.append(total)
    return out
''', ["([]) == []", "([5]) == [5]", "([1, 1, 1, 1]) == [1, 2, 3, 4]", "([3, -1, 2]) == [3, 2, 4]"]),
    ("count_vowels", '''def count_vowels(word: str) -> int:
    """Count the vowels (a, e, i, o, u) in a lowercase word.

    >>> count_vowels('banana')
    3
    """
''', '''    return sum(1 for ch in word if ch in 'aeiou')
''', ["('') == 0", "('sky') == 0", "('banana') == 3", "('queue') == 4", "('python') == 1"]),
    ("reverse_words", '''def reverse_words(sentence: str) -> str:
    """Reverse the order of the words in a sentence; words are separated by single spaces.

    >>> reverse_words('hello big world')
    'world big hello'
    """
''', '''    return ' '.join(sentence.split()[::-1])
''', ["('') == ''", "('one') == 'one'", "('a b') == 'b a'", "('the quick fox') == 'fox quick the'"]),
    ("max_of_three", '''def max_of_three(a: int, b: int, c: int) -> int:
    """Return the largest of three integers.

    >>> max_of_three(3, 9, 4)
    9
    """
''', '''    best = a
    if b > best:
        best = b
    if c > best:
        best = c
    return best
''', ["(1, 2, 3) == 3", "(3, 2, 1) == 3", "(-5, -2, -9) == -2", "(4, 4, 4) == 4", "(0, 7, 7) == 7"]),
    ("fizzbuzz", '''def fizzbuzz(n: int) -> str:
    """Return 'FizzBuzz' if n is divisible by 15, 'Fizz' if by 3, 'Buzz' if by 5,
    and otherwise n as a string.

    >>> fizzbuzz(9)
    'Fizz'
    """
''', '''    if n % 15 == 0:
        return 'FizzBuzz'
    elif n % 3 == 0:
        return 'Fizz'
    elif n % 5 == 0:
        return 'Buzz'
    return str(n)
''', ["(1) == '1'", "(3) == 'Fizz'", "(10) == 'Buzz'", "(30) == 'FizzBuzz'", "(7) == '7'"]),
    ("digit_sum", '''def digit_sum(n: int) -> int:
    """Add up the decimal digits of a non-negative integer.

    >>> digit_sum(1234)
    10
    """
''', '''    total = 0
    while n > 0:
        total += n % 10
        n //= 10
    return total
''', ["(0) == 0", "(7) == 7", "(99) == 18", "(1005) == 6", "(123456) == 21"]),
    ("is_leap_year", '''def is_leap_year(year: int) -> bool:
    """A year is a leap year if it is divisible by 4, except years divisible by 100,
    which are leap years only if they are also divisible by 400.

    >>> is_leap_year(2024)
    True
    """
''', '''    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
''', ["(2023) == False", "(2000) == True", "(1900) == False", "(1996) == True", "(2100) == False"]),
    ("celsius_to_fahrenheit", '''def celsius_to_fahrenheit(celsius: int) -> int:
    """Convert a temperature to Fahrenheit: celsius * 9 // 5 + 32.

    >>> celsius_to_fahrenheit(100)
    212
    """
''', '''    return celsius * 9 // 5 + 32
''', ["(0) == 32", "(100) == 212", "(-40) == -40", "(37) == 98", "(20) == 68"]),
    ("mean_floor", '''def mean_floor(nums: list[int]) -> int:
    """Return the average of a non-empty list, rounded down to an integer.

    >>> mean_floor([1, 2, 4])
    2
    """
''', '''    return sum(nums) // len(nums)
''', ["([5]) == 5", "([1, 2]) == 1", "([2, 4, 6]) == 4", "([-3, 0]) == -2", "([10, 10, 11]) == 10"]),
    ("count_words", '''def count_words(text: str) -> int:
    """Return how many words the text contains (words are separated by whitespace).

    >>> count_words('the cat sat')
    3
    """
''', '''    return len(text.split())
''', ["('') == 0", "('hi') == 1", "('  spaced   out  ') == 2", "('a b c d') == 4"]),
    ("second_largest", '''def second_largest(nums: list[int]) -> int:
    """Return the second largest distinct value in a list that has at least two
    distinct values.

    >>> second_largest([4, 1, 9, 9, 7])
    7
    """
''', '''    return sorted(set(nums))[-2]
''', ["([1, 2]) == 1", "([5, 5, 3]) == 3", "([10, 20, 30]) == 20", "([-1, -7, -3]) == -3"]),
    ("remove_duplicates", '''def remove_duplicates(items: list[int]) -> list[int]:
    """Remove repeated values from the list, keeping the first occurrence of each.

    >>> remove_duplicates([3, 1, 3, 2, 1])
    [3, 1, 2]
    """
''', '''    seen = []
    for x in items:
        if x not in seen:
            seen.append(x)
    return seen
''', ["([]) == []", "([1, 1, 1]) == [1]", "([1, 2, 3]) == [1, 2, 3]", "([5, 4, 5, 4, 6]) == [5, 4, 6]"]),
    ("capitalize_words", '''def capitalize_words(sentence: str) -> str:
    """Make the first letter of every word upper case. Words are separated by single
    spaces and are lower case.

    >>> capitalize_words('hello there')
    'Hello There'
    """
''', '''    return ' '.join(w[0].upper() + w[1:] for w in sentence.split(' ') if w)
''', ["('') == ''", "('a') == 'A'", "('good morning') == 'Good Morning'", "('one two three') == 'One Two Three'"]),
    ("find_index", '''def find_index(items: list[int], target: int) -> int:
    """Return the index of the first occurrence of target in items, or -1 if it is
    not there.

    >>> find_index([4, 2, 7, 2], 2)
    1
    """
''', '''    for i, x in enumerate(items):
        if x == target:
            return i
    return -1
''', ["([], 3) == -1", "([3], 3) == 0", "([1, 2, 3], 4) == -1", "([5, 6, 5], 5) == 0", "([0, 1, 2, 3], 3) == 3"]),
    ("power", '''def power(base: int, exponent: int) -> int:
    """Compute base raised to a non-negative integer exponent without using **.

    >>> power(2, 5)
    32
    """
''', '''    result = 1
    for _ in range(exponent):
        result *= base
    return result
''', ["(2, 0) == 1", "(3, 1) == 3", "(2, 10) == 1024", "(-2, 3) == -8", "(5, 2) == 25"]),
    ("is_sorted", '''def is_sorted(nums: list[int]) -> bool:
    """Return True if the list is in non-decreasing order.

    >>> is_sorted([1, 2, 2, 5])
    True
    """
''', '''    for i in range(1, len(nums)):
        if nums[i] < nums[i - 1]:
            return False
    return True
''', ["([]) == True", "([4]) == True", "([1, 3, 2]) == False", "([1, 1, 2, 3]) == True", "([5, 4]) == False"]),
    ("count_positive", '''def count_positive(nums: list[int]) -> int:
    """Count how many numbers in the list are strictly greater than zero.

    >>> count_positive([-1, 0, 3, 5])
    2
    """
''', '''    count = 0
    for n in nums:
        if n > 0:
            count += 1
    return count
''', ["([]) == 0", "([0, 0]) == 0", "([1, 2, 3]) == 3", "([-5, 5, -6, 6]) == 2"]),
    ("longest_word", '''def longest_word(sentence: str) -> str:
    """Return the longest word in the sentence; if several are equally long, the first.

    >>> longest_word('a quick brown fox')
    'quick'
    """
''', '''    best = ''
    for word in sentence.split():
        if len(word) > len(best):
            best = word
    return best
''', ["('hi') == 'hi'", "('one three two') == 'three'", "('ab cd ef') == 'ab'", "('x yy zzz') == 'zzz'"]),
    ("gcd", '''def gcd(a: int, b: int) -> int:
    """Greatest common divisor of two positive integers (Euclid's algorithm).

    >>> gcd(12, 18)
    6
    """
''', '''    while b:
        a, b = b, a % b
    return a
''', ["(7, 7) == 7", "(12, 18) == 6", "(17, 5) == 1", "(100, 75) == 25", "(9, 3) == 3"]),
    ("fibonacci", '''def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number, where fibonacci(0) = 0 and fibonacci(1) = 1.

    >>> fibonacci(7)
    13
    """
''', '''    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
''', ["(0) == 0", "(1) == 1", "(2) == 1", "(10) == 55", "(12) == 144"]),
    ("reverse_string", '''def reverse_string(s: str) -> str:
    """Return s with its characters in reverse order.

    >>> reverse_string('abc')
    'cba'
    """
''', '''    return s[::-1]
''', ["('') == ''", "('x') == 'x'", "('hello') == 'olleh'", "('ab cd') == 'dc ba'"]),
    ("multiply_list", '''def multiply_list(nums: list[int]) -> int:
    """Return the product of all numbers in the list (1 for an empty list).

    >>> multiply_list([2, 3, 4])
    24
    """
''', '''    product = 1
    for n in nums:
        product *= n
    return product
''', ["([]) == 1", "([5]) == 5", "([1, 2, 3]) == 6", "([-1, 4]) == -4", "([0, 9, 9]) == 0"]),
    ("min_max_difference", '''def min_max_difference(nums: list[int]) -> int:
    """Return the difference between the largest and the smallest element of a
    non-empty list.

    >>> min_max_difference([3, 9, 1])
    8
    """
''', '''    return max(nums) - min(nums)
''', ["([4]) == 0", "([1, 2]) == 1", "([-5, 5]) == 10", "([7, 7, 7]) == 0", "([2, 10, 6]) == 8"]),
    ("char_frequency", '''def char_frequency(text: str, char: str) -> int:
    """Count how many times the single character char occurs in text.

    >>> char_frequency('mississippi', 's')
    4
    """
''', '''    return text.count(char)
''', ["('', 'a') == 0", "('aaa', 'a') == 3", "('hello', 'l') == 2", "('abc', 'z') == 0"]),
    ("starts_with_vowel", '''def starts_with_vowel(word: str) -> bool:
    """Tell whether a non-empty lowercase word begins with a vowel.

    >>> starts_with_vowel('apple')
    True
    """
''', '''    return word[0] in 'aeiou'
''', ["('apple') == True", "('banana') == False", "('egg') == True", "('sky') == False", "('under') == True"]),
    ("squares_up_to", '''def squares_up_to(n: int) -> list[int]:
    """Return the list of squares 1, 4, 9, ... up to n * n.

    >>> squares_up_to(4)
    [1, 4, 9, 16]
    """
''', '''    return [k * k for k in range(1, n + 1)]
''', ["(0) == []", "(1) == [1]", "(3) == [1, 4, 9]", "(5) == [1, 4, 9, 16, 25]"]),
]


def problems() -> dict[str, dict]:
    """The hand-written problems by task id (``Handwritten/<i>``), HumanEval's format."""
    out = {}
    for i, (name, prompt, solution, asserts) in enumerate(_PROBLEMS):
        test = "def check(candidate):\n" + "".join(f"    assert candidate{a}\n" for a in asserts)
        out[f"Handwritten/{i}"] = {"task_id": f"Handwritten/{i}", "prompt": prompt, "canonical_solution": solution,
                                   "test": test, "entry_point": name}
    return out
