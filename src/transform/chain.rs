//! Composition: [`Chain`] and the [`chain!`](crate::chain) macro.

use super::{Context, Transform};
use crate::{Error, Hyperparameter, Scalar, Slots};

/// Two transforms, one after the other: `second` receives what `first` returns. Its state is
/// `first`'s followed by `second`'s, gathered per element into one array ([`Join`]). A chain
/// holds at most one transform that [reduces](Transform::REDUCES) (the first one counts).
///
/// Built by [`chain!`](crate::chain), which nests longer chains: `chain!(a, b, c)` is
/// `Chain::new(a, Chain::new(b, c))`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Chain<A, B> {
    /// The transform applied first.
    pub first: A,
    /// The transform applied to what `first` returns.
    pub second: B,
}

impl<A, B> Chain<A, B> {
    /// `first`, then `second`.
    pub fn new(first: A, second: B) -> Self {
        Self { first, second }
    }
}

/// Composes transforms, first to last, into one [`Transform`]:
/// `chain!(ScaleByAdam::default(), ScaleByLearningRate)` is optax's
/// `chain(scale_by_adam(), scale_by_learning_rate(lr))`. See [`crate::transform`].
#[macro_export]
macro_rules! chain {
    ($only:expr $(,)?) => {
        $only
    };
    ($first:expr, $($rest:expr),+ $(,)?) => {
        $crate::transform::Chain::new($first, $crate::chain!($($rest),+))
    };
}

/// Per-element state arrays that concatenate: `[F; A]` joined with `[F; B]` is `[F; A + B]`,
/// for totals up to 8. [`Chain`] gathers its two transforms' state this way, so that the engine's
/// fused loop sees one array per element.
pub trait Join<F: Scalar, B: Slots<F>>: Slots<F> {
    /// The concatenation.
    type Output: Slots<F>;

    /// The two parts of a concatenation.
    fn split(joined: &mut Self::Output) -> (&mut Self, &mut B);
}

/// `impl Join<[F; b]> for [F; a]` for each `a` and each listed `b`.
macro_rules! join {
    ($($a:literal: $($b:literal)*;)*) => {$($(
        impl<F: Scalar> Join<F, [F; $b]> for [F; $a] {
            type Output = [F; $a + $b];

            #[inline(always)]
            fn split(joined: &mut [F; $a + $b]) -> (&mut [F; $a], &mut [F; $b]) {
                let (first, second) = joined.split_at_mut($a);
                // Lengths known when compiled: the checks fold away.
                (
                    first.try_into().expect("the first part has its length"),
                    second.try_into().expect("the second part has its length"),
                )
            }
        }
    )*)*};
}

join! {
    0: 0 1 2 3 4 5 6 7 8;
    1: 0 1 2 3 4 5 6 7;
    2: 0 1 2 3 4 5 6;
    3: 0 1 2 3 4 5;
    4: 0 1 2 3 4;
    5: 0 1 2 3;
    6: 0 1 2;
    7: 0 1;
    8: 0;
}

impl<F: Scalar, A: Transform<F>, B: Transform<F>> Transform<F> for Chain<A, B>
where
    A::State: Join<F, B::State>,
{
    type State = <A::State as Join<F, B::State>>::Output;
    type Scalars = (A::Scalars, B::Scalars);

    fn slot_names(&self) -> Vec<&'static str> {
        let mut names = self.first.slot_names();
        names.extend(self.second.slot_names());
        names
    }

    fn hyperparameter(&self, h: Hyperparameter) -> Option<f64> {
        self.first
            .hyperparameter(h)
            .or_else(|| self.second.hyperparameter(h))
    }

    fn set_hyperparameter(&mut self, h: Hyperparameter, value: f64) {
        if self.first.hyperparameter(h).is_some() {
            self.first.set_hyperparameter(h, value);
        } else {
            self.second.set_hyperparameter(h, value);
        }
    }

    fn validate(&self) -> Result<(), Error> {
        self.first.validate()?;
        self.second.validate()
    }

    fn scalars(&self, ctx: &Context<'_>) -> Self::Scalars {
        (self.first.scalars(ctx), self.second.scalars(ctx))
    }

    #[inline(always)]
    fn apply((a, b): &Self::Scalars, p: F, u: F, state: &mut Self::State) -> F {
        let (first, second) = <A::State as Join<F, B::State>>::split(state);
        B::apply(b, p, A::apply(a, p, u, first), second)
    }

    const REDUCES: bool = A::REDUCES || B::REDUCES;

    #[inline(always)]
    fn before((a, b): &Self::Scalars, p: F, u: F, state: &mut Self::State) -> F {
        let (first, second) = <A::State as Join<F, B::State>>::split(state);
        if A::REDUCES || A::TENSOR {
            A::before(a, p, u, first)
        } else {
            B::before(b, p, A::apply(a, p, u, first), second)
        }
    }

    #[inline(always)]
    fn reduce(p: F, u: F) -> [F; 2] {
        if A::REDUCES {
            A::reduce(p, u)
        } else {
            B::reduce(p, u)
        }
    }

    fn finish((a, b): &mut Self::Scalars, sums: [F; 2]) {
        if A::REDUCES {
            A::finish(a, sums);
        } else {
            B::finish(b, sums);
        }
    }

    const TENSOR: bool = A::TENSOR || B::TENSOR;

    fn scratch(&self, rows: usize, cols: usize) -> usize {
        if A::TENSOR {
            self.first.scratch(rows, cols)
        } else {
            self.second.scratch(rows, cols)
        }
    }

    fn tensor(
        &self,
        (a, b): &Self::Scalars,
        u: &mut [F],
        rows: usize,
        cols: usize,
        scratch: &mut [F],
    ) {
        if A::TENSOR {
            self.first.tensor(a, u, rows, cols, scratch);
        } else {
            self.second.tensor(b, u, rows, cols, scratch);
        }
    }

    #[inline(always)]
    fn after((a, b): &Self::Scalars, p: F, u: F, state: &mut Self::State) -> F {
        let (first, second) = <A::State as Join<F, B::State>>::split(state);
        if A::TENSOR {
            B::apply(b, p, A::after(a, p, u, first), second)
        } else {
            B::after(b, p, u, second)
        }
    }
}
