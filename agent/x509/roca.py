"""Fingerprint of RSA moduli made by the Infineon RSALib (ROCA, CVE-2017-15361).

Nemec, Sys, Svenda, Klinec, Matyas, "The Return of Coppersmith's Attack: Practical
Factorization of Widely Used RSA Moduli", ACM CCS 2017 (https://crocs.fi.muni.cz/public/papers/rsa_ccs17).
The library builds each prime as ``p = k*M + (65537^a mod M)`` with ``M`` a primorial, so for
every small prime ``r`` dividing ``M``, ``N = p*q mod r`` is a power of 65537 mod ``r``: it lies
in the multiplicative subgroup that 65537 generates in (Z/rZ)*. A random modulus passes all 38
odd primes up to 167 (the primes every RSALib key size uses) with probability ~2^-27.8, which
is the false-positive rate of this test; a RSALib modulus always passes.
"""

from __future__ import annotations

import math

_GENERATOR = 65537
# The first 39 primes form the smallest RSALib primorial (512-bit keys); larger keys use a
# multiple of it, so these primes fingerprint every key size. 2 carries no information.
_PRIMES = tuple(p for p in range(3, 168) if all(p % d for d in range(2, math.isqrt(p) + 1)))


def _subgroup_mask(prime: int) -> int:
    """Bit ``x`` set for every ``x = 65537^i mod prime``."""
    mask, x = 0, 1
    while True:
        mask |= 1 << x
        x = x * _GENERATOR % prime
        if x == 1:
            return mask


def _order(mask: int) -> int:
    return bin(mask).count("1")


# Most selective primes first (smallest subgroup relative to r-1), so an ordinary modulus is
# usually rejected after one or two word-sized reductions.
_TABLE = tuple(
    sorted(
        ((p, _subgroup_mask(p)) for p in _PRIMES),
        key=lambda pm: _order(pm[1]) / (pm[0] - 1),
    )
)
_PRODUCT = math.prod(_PRIMES)

FALSE_POSITIVE_RATE = math.prod(_order(m) / (p - 1) for p, m in _TABLE)
"""Probability that a random modulus matches the fingerprint (~4.2e-9)."""


def is_roca_modulus(modulus: int) -> bool:
    """True when an RSA modulus carries the Infineon RSALib fingerprint."""
    reduced = modulus % _PRODUCT  # one big-number reduction, then word-sized ones
    return all((mask >> (reduced % prime)) & 1 for prime, mask in _TABLE)
