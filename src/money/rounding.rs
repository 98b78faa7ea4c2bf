//! Rounding rules: how an exact value becomes a whole number of minor units.
//!
//! The default is half-up (ties away from zero), the rule most payment schemes state for currency
//! conversion. The rule is configurable per deployment; see `spec/fx.md` § Rounding.

use std::fmt;
use std::str::FromStr;

/// How to round an exact value to a whole number of minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Rounding {
    /// Nearest; a tie goes away from zero (0.5 → 1, 2.5 → 3). The default.
    #[default]
    HalfUp,
    /// Nearest; a tie goes to the even neighbour (0.5 → 0, 1.5 → 2, 2.5 → 2). "Banker's rounding".
    HalfEven,
    /// Toward zero: drop the remainder (the payer never pays a fraction more).
    Down,
    /// Away from zero: any remainder adds one minor unit.
    Up,
}

/// A rounding rule name that is not one of `half-up`, `half-even`, `down`, `up`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rounding rule {0:?} (expected half-up, half-even, down or up)")]
pub struct ParseRoundingError(pub String);

impl Rounding {
    /// Every rule, in a fixed order (for tests and help texts).
    pub const ALL: [Rounding; 4] = [
        Rounding::HalfUp,
        Rounding::HalfEven,
        Rounding::Down,
        Rounding::Up,
    ];

    /// The rule's name as written in configs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Rounding::HalfUp => "half-up",
            Rounding::HalfEven => "half-even",
            Rounding::Down => "down",
            Rounding::Up => "up",
        }
    }

    /// Rounds the non-negative fraction `num / den` to a whole number under this rule.
    /// Returns `None` when `den` is zero.
    pub fn divide(self, num: u128, den: u128) -> Option<u128> {
        let q = num.checked_div(den)?;
        let r = num % den;
        // `r < den`, so `den - r` cannot underflow, and when `r > 0` we have `den >= 2`, so
        // `q <= u128::MAX / 2` and `q + 1` cannot overflow.
        let rest = den - r;
        let up = match self {
            Rounding::HalfUp => r > 0 && r >= rest,
            Rounding::HalfEven => r > rest || (r > 0 && r == rest && q % 2 == 1),
            Rounding::Down => false,
            Rounding::Up => r > 0,
        };
        Some(if up { q + 1 } else { q })
    }

    /// The same rule as a `rust_decimal` strategy (for values held as `Decimal`).
    pub fn strategy(self) -> rust_decimal::RoundingStrategy {
        use rust_decimal::RoundingStrategy as S;
        match self {
            Rounding::HalfUp => S::MidpointAwayFromZero,
            Rounding::HalfEven => S::MidpointNearestEven,
            Rounding::Down => S::ToZero,
            Rounding::Up => S::AwayFromZero,
        }
    }
}

impl FromStr for Rounding {
    type Err = ParseRoundingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rounding::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ParseRoundingError(s.chars().take(32).collect()))
    }
}

impl fmt::Display for Rounding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_way_cases_follow_each_rule() {
        // (num, den) → expected under HalfUp, HalfEven, Down, Up
        let cases: [(u128, u128, [u128; 4]); 8] = [
            (5, 10, [1, 0, 0, 1]),
            (15, 10, [2, 2, 1, 2]),
            (25, 10, [3, 2, 2, 3]),
            (24, 10, [2, 2, 2, 3]),
            (26, 10, [3, 3, 2, 3]),
            (20, 10, [2, 2, 2, 2]),
            (0, 7, [0, 0, 0, 0]),
            (7, 2, [4, 4, 3, 4]),
        ];
        for (num, den, want) in cases {
            for (rule, w) in Rounding::ALL.into_iter().zip(want) {
                assert_eq!(rule.divide(num, den), Some(w), "{num}/{den} {rule}");
            }
        }
    }

    #[test]
    fn odd_denominators_have_no_tie() {
        assert_eq!(Rounding::HalfEven.divide(3, 3), Some(1));
        assert_eq!(Rounding::HalfUp.divide(1, 3), Some(0));
        assert_eq!(Rounding::HalfUp.divide(2, 3), Some(1));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        assert_eq!(Rounding::Up.divide(u128::MAX, 1), Some(u128::MAX));
        assert_eq!(Rounding::Up.divide(u128::MAX, 2), Some(u128::MAX / 2 + 1));
        assert_eq!(Rounding::HalfUp.divide(u128::MAX, u128::MAX), Some(1));
        assert_eq!(Rounding::HalfUp.divide(1, 0), None);
    }

    #[test]
    fn names_round_trip() {
        for r in Rounding::ALL {
            assert_eq!(r.as_str().parse::<Rounding>(), Ok(r));
        }
        assert!("HALF_UP".parse::<Rounding>().is_err());
    }
}
