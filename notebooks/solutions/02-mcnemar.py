# EXERCISE 02-mcnemar
from math import comb


def mcnemar_p(first, second):
    """Exact two-sided McNemar p value of two 0/1 score lists over the same items."""
    only_first = sum(1 for a, b in zip(first, second) if a and not b)  # discordant items, one way
    only_second = sum(1 for a, b in zip(first, second) if b and not a)  # and the other
    n = only_first + only_second  # items both got right, or both wrong, say nothing: left out
    k = min(only_first, only_second)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2 ** n  # P(a split at least this lopsided one way), fair coin
    return min(1.0, 2 * tail)  # two-sided: either way round
