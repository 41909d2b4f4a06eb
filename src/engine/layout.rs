//! Where an engine stores parameters and state, and in what types: [`Native`] (everything in the
//! arithmetic type) or [`Mixed`] (low-precision parameters, state in `f32` or in the parameters'
//! type, arithmetic in `f32`).

use std::fmt::Debug;
use std::marker::PhantomData;

use super::kernel::{Compensated, Kahan, Nearest, Stochastic};
use ndarray::ArrayRefD;

use super::{Mode, Parts, Rule, Scalar, Slots, Step};
use crate::element::Store;

/// The storage of an [`Engine`](super::Engine): the types of its parameters (and gradients) and
/// of its state, for arithmetic in `F`. Rules never see it: they compute in `F`, and the fused
/// pass converts on the way in and rounds on the way out.
pub trait Layout<F: Scalar>: Copy + Debug + Default + Send + Sync + 'static {
    /// The type parameters and gradients are stored in.
    type Param: Store<F>;
    /// The type state is stored in.
    type State: Store<F>;
    /// Whether both are `F`: rules that need whole tensors (Muon, LAMB, LARS, Adafactor) run
    /// only on native layouts.
    const NATIVE: bool;

    /// [`Step::for_each`] on this layout.
    #[doc(hidden)]
    fn for_each<S: Slots<F>>(step: Step<'_, F, Self>, f: impl Fn(&mut F, F, &mut S) + Sync);

    /// [`Step::for_each_update`] on this layout.
    #[doc(hidden)]
    fn for_each_update<S: Slots<F>>(
        step: Step<'_, F, Self>,
        f: impl Fn(&mut F, F, &mut S) -> F + Sync,
    );

    /// [`Step::for_each_compensated`] on this layout.
    #[doc(hidden)]
    fn for_each_compensated<S: Slots<F>>(
        step: Step<'_, F, Self>,
        f: impl Fn(&mut F, F, &mut S, &mut F) -> F + Sync,
    );

    /// [`Step::sum`] on this layout.
    #[doc(hidden)]
    fn sum<S: Slots<F>, const K: usize>(
        step: &mut Step<'_, F, Self>,
        f: impl Fn(F, F, &S) -> [F; K],
    ) -> [F; K];

    /// [`Step::parts`] on this layout.
    #[doc(hidden)]
    fn parts(step: Step<'_, F, Self>) -> Parts<'_, F>;

    /// [`Rule::switch`] of one key on this layout.
    #[doc(hidden)]
    fn switch<R: Rule<F>>(
        rule: &R,
        to: Mode,
        params: &mut ArrayRefD<Self::Param>,
        state: &[Self::State],
    );
}

/// Parameters, gradients and state in the arithmetic type `F` (`f32` or `f64`): every
/// optimizer's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Native;

impl<F: Scalar> Layout<F> for Native {
    type Param = F;
    type State = F;
    const NATIVE: bool = true;

    #[inline(always)]
    fn for_each<S: Slots<F>>(step: Step<'_, F, Self>, f: impl Fn(&mut F, F, &mut S) + Sync) {
        Self::parts(step).for_each(f);
    }

    #[inline(always)]
    fn for_each_update<S: Slots<F>>(
        step: Step<'_, F, Self>,
        f: impl Fn(&mut F, F, &mut S) -> F + Sync,
    ) {
        Self::for_each(step, move |p, g, s| {
            let inc = f(p, g, s);
            *p = *p + inc;
        });
    }

    #[inline(always)]
    fn for_each_compensated<S: Slots<F>>(
        step: Step<'_, F, Self>,
        f: impl Fn(&mut F, F, &mut S, &mut F) -> F + Sync,
    ) {
        Self::for_each_update(step, move |p, g, s| f(p, g, s, &mut F::zero()));
    }

    #[inline(always)]
    fn sum<S: Slots<F>, const K: usize>(
        step: &mut Step<'_, F, Self>,
        f: impl Fn(F, F, &S) -> [F; K],
    ) -> [F; K] {
        let mut parts = Parts {
            params: &mut *step.params,
            grads: step.grads,
            state: &mut *step.state,
            scratch: &mut *step.scratch,
        };
        parts.sum(f)
    }

    fn switch<R: Rule<F>>(rule: &R, to: Mode, params: &mut ArrayRefD<F>, state: &[F]) {
        rule.switch(to, params, state);
    }

    fn parts(step: Step<'_, F, Self>) -> Parts<'_, F> {
        Parts {
            params: step.params,
            grads: step.grads,
            state: step.state,
            scratch: step.scratch,
        }
    }
}

/// Parameters and gradients stored as `P` (`half::bf16` or `half::f16`), state as `S` (`f32`, the
/// default, or `P`: torch-optimi's layout), arithmetic in `f32`. The parameter's update is
/// written with the engine's [`Rounding`](crate::Rounding). See [`crate::precision`].
pub struct Mixed<P, S = f32>(PhantomData<fn() -> (P, S)>);

impl<P, S> Clone for Mixed<P, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P, S> Copy for Mixed<P, S> {}

impl<P, S> Default for Mixed<P, S> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<P, S> Debug for Mixed<P, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Mixed<{}, {}>",
            std::any::type_name::<P>(),
            std::any::type_name::<S>()
        )
    }
}

impl<P: Store<f32>, S: Store<f32>> Layout<f32> for Mixed<P, S> {
    type Param = P;
    type State = S;
    const NATIVE: bool = false;

    #[inline(always)]
    fn for_each<T: Slots<f32>>(
        step: Step<'_, f32, Self>,
        f: impl Fn(&mut f32, f32, &mut T) + Sync,
    ) {
        // The rule's new parameter, as the update from the stored one: what the rounding
        // (Kahan's compensation above all) needs.
        Self::for_each_update(step, move |p, g, s| {
            let before = *p;
            f(p, g, s);
            let inc = *p - before;
            *p = before;
            inc
        });
    }

    #[inline(always)]
    fn for_each_update<T: Slots<f32>>(
        step: Step<'_, f32, Self>,
        f: impl Fn(&mut f32, f32, &mut T) -> f32 + Sync,
    ) {
        mixed_pass(step, false, move |p, g, s, _| f(p, g, s));
    }

    #[inline(always)]
    fn for_each_compensated<T: Slots<f32>>(
        step: Step<'_, f32, Self>,
        f: impl Fn(&mut f32, f32, &mut T, &mut f32) -> f32 + Sync,
    ) {
        mixed_pass(step, true, f);
    }

    fn sum<T: Slots<f32>, const K: usize>(
        step: &mut Step<'_, f32, Self>,
        f: impl Fn(f32, f32, &T) -> [f32; K],
    ) -> [f32; K] {
        T::stored_sum(step.params, step.grads, step.state, &f)
    }

    /// On copies in `f32`, rounded back to nearest: a switch moves the parameter between two
    /// points the state holds, not by a small update.
    fn switch<R: Rule<f32>>(rule: &R, to: Mode, params: &mut ArrayRefD<P>, state: &[S]) {
        let mut p = params.mapv(Store::load);
        let state: Vec<f32> = state.iter().map(|s| s.load()).collect();
        rule.switch(to, &mut p, &state);
        params.zip_mut_with(&p, |stored, &v| *stored = P::round(v));
    }

    fn parts(_: Step<'_, f32, Self>) -> Parts<'_, f32> {
        unreachable!("the engine refuses rules that need whole tensors on mixed layouts")
    }
}

/// The stored-element pass of a mixed layout with the step's writer; `compensated`: Kahan's
/// compensation goes to `f`, which writes through it itself.
#[inline(always)]
fn mixed_pass<P: Store<f32>, S: Store<f32>, T: Slots<f32>>(
    step: Step<'_, f32, Mixed<P, S>>,
    compensated: bool,
    f: impl Fn(&mut f32, f32, &mut T, &mut f32) -> f32 + Sync,
) {
    let (params, grads, state) = (step.params, step.grads, step.state);
    match step.write {
        Write::Nearest => T::stored_pass(params, grads, state, Nearest, &f),
        Write::Kahan(comp) if compensated => {
            T::stored_pass(params, grads, state, Compensated(comp), &f)
        }
        Write::Kahan(comp) => T::stored_pass(params, grads, state, Kahan(comp), &f),
        Write::Stochastic(seed) => {
            T::stored_pass(params, grads, state, Stochastic { seed, offset: 0 }, &f)
        }
    }
}

/// How one key's step writes its parameter, with the data the rounding needs.
#[derive(Debug)]
pub(crate) enum Write<'a, P> {
    Nearest,
    /// The key's compensation buffer.
    Kahan(&'a mut [P]),
    /// The key's step seed.
    Stochastic(u32),
}
