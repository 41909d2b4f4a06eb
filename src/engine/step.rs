//! One key's update as a rule sees it.

use ndarray::ArrayRefD;

use super::layout::Write;
use super::{Layout, Native, Scalar, Scope, Slots, kernel};

/// One key's update, handed to [`Rule::step`](super::Rule::step): the key, its parameter and
/// gradient, its state and scratch space, the learning rate, the key's step count and what its
/// [`Group`](crate::Group) sets. `L` is where the engine stores them ([`Native`] or
/// [`Mixed`](super::Mixed)); a rule computes in `F` either way.
pub struct Step<'a, F: Scalar, L: Layout<F> = Native> {
    pub(crate) key: &'a str,
    pub(crate) lr: f64,
    pub(crate) weight_decay: Option<f64>,
    pub(crate) trust_ratio: bool,
    pub(crate) t: u64,
    /// The optimizer-wide scalars of a rule of [`Scope::Global`](super::Scope::Global).
    pub(crate) globals: &'a [f64],
    pub(crate) params: &'a mut ArrayRefD<L::Param>,
    pub(crate) grads: &'a ArrayRefD<L::Param>,
    pub(crate) state: &'a mut [L::State],
    pub(crate) scratch: &'a mut [F],
    pub(crate) write: Write<'a, L::Param>,
    /// The rule's [`Scope`], checked in debug builds by the methods that reach beyond an element.
    pub(crate) scope: Scope,
}

/// A key's arrays whole, for rules that are not elementwise ([`Step::parts`]).
pub struct Parts<'a, F> {
    /// The parameter, updated in place.
    pub params: &'a mut ArrayRefD<F>,
    /// Its gradient.
    pub grads: &'a ArrayRefD<F>,
    /// The key's state: the slots of [`Rule::slots`](super::Rule::slots), one after the other,
    /// each in row-major order.
    pub state: &'a mut [F],
    /// The key's scratch space ([`Rule::scratch`](super::Rule::scratch) elements), kept between
    /// steps so that nothing is allocated, but not part of the state or of checkpoints.
    pub scratch: &'a mut [F],
}

impl<F: Scalar> Parts<'_, F> {
    /// The fused pass of [`Step::for_each`] over these arrays, for rules that make more than one
    /// pass (LAMB: moments, norms, step).
    ///
    /// # Panics
    ///
    /// If `N` in `S = [F; N]` disagrees with the state's length: a bug in the rule.
    #[inline]
    pub fn for_each<S: Slots<F>>(&mut self, f: impl Fn(&mut F, F, &mut S) + Sync) {
        let n = self.params.len();
        assert_eq!(
            S::COUNT * n,
            self.state.len(),
            "a rule's per-element slots disagree with the state it declared"
        );
        if let (Some(p), Some(g)) = (self.params.as_slice_mut(), self.grads.as_slice()) {
            let columns = S::columns(self.state, n);
            #[cfg(feature = "rayon")]
            if crate::parallel::worth_it(n) {
                return kernel::for_each_slice_parallel(p, g, columns, &f);
            }
            kernel::for_each_slice(p, g, columns, &f);
        } else {
            S::for_each_logical(self.params.view_mut(), self.grads.view(), self.state, &f);
        }
    }

    /// Sums `f(p, g, slots)` (`K` numbers per element) over every element, in a vectorized pass
    /// with a fixed order of additions: the norms of whole-tensor rules.
    ///
    /// # Panics
    ///
    /// As [`Parts::for_each`].
    #[inline]
    pub fn sum<S: Slots<F>, const K: usize>(&mut self, f: impl Fn(F, F, &S) -> [F; K]) -> [F; K] {
        let n = self.params.len();
        assert_eq!(
            S::COUNT * n,
            self.state.len(),
            "a rule's per-element slots disagree with the state it declared"
        );
        if let (Some(p), Some(g)) = (self.params.as_slice(), self.grads.as_slice()) {
            let columns = S::columns(self.state, n);
            kernel::sum_slice(p, g, &columns, &f)
        } else {
            S::stored_sum(self.params, self.grads, self.state, &f)
        }
    }
}

impl<'a, F: Scalar, L: Layout<F>> Step<'a, F, L> {
    /// The parameter's key.
    pub fn key(&self) -> &str {
        self.key
    }

    /// The learning rate of this step.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// The key's step count: 1 on its first update.
    pub fn t(&self) -> u64 {
        self.t
    }

    /// The optimizer-wide scalars of a rule of [`Scope::Global`](super::Scope::Global), in the
    /// order of [`Rule::globals`](super::Rule::globals): as the last step left them in
    /// [`Rule::measure`](super::Rule::measure), as [`Rule::reduce`](super::Rule::reduce) left them
    /// in [`Rule::step`](super::Rule::step). Empty for other rules.
    pub fn globals(&self) -> &[f64] {
        self.globals
    }

    /// The weight decay the key's [`Group`](crate::Group) sets, replacing the rule's own.
    pub fn weight_decay(&self) -> Option<f64> {
        self.weight_decay
    }

    /// Whether per-tensor trust ratios (LAMB, LARS) apply to this key: `false` when its
    /// [`Group`](crate::Group) excludes it with [`Group::trust_ratio`](crate::Group::trust_ratio).
    pub fn trust_ratio(&self) -> bool {
        self.trust_ratio
    }

    /// Runs `f(p, g, slots)` once per element, in one fused pass: the way of every elementwise
    /// rule. `S` is `[F; N]` with `N` the number of slots the rule declared for this step.
    ///
    /// # Panics
    ///
    /// If `N` disagrees with the rule's [`Rule::slots`](super::Rule::slots): a bug in the rule,
    /// not bad input.
    #[inline]
    pub fn for_each<S: Slots<F>>(self, f: impl Fn(&mut F, F, &mut S) + Sync) {
        L::for_each(self, f);
    }

    /// Like [`Step::for_each`], with `f` returning the update the parameter receives (after any
    /// change it makes to `p` itself, such as weight decay) instead of writing it: for rules that
    /// follow a reference whose last operation adds an update in the parameter's type
    /// (torch-optimi's), so that a low-precision parameter is written as the reference writes it.
    /// On a native layout `p` becomes `p + update`.
    #[inline]
    pub fn for_each_update<S: Slots<F>>(self, f: impl Fn(&mut F, F, &mut S) -> F + Sync) {
        L::for_each_update(self, f);
    }

    /// Like [`Step::for_each_update`], for rules that follow a reference which writes through
    /// Kahan summation in its own order (torch-optimi's Adan and Ranger): `f(p, g, slots, comp)`.
    /// When [`Step::compensated`] is true, `comp` is the element's Kahan compensation, which `f`
    /// updates, and the parameter is stored as `p + update` rounded to nearest (so `f` writes
    /// `p` itself and returns zero). Otherwise `comp` is zero and ignored, and the update is
    /// written with the engine's rounding.
    #[inline]
    pub fn for_each_compensated<S: Slots<F>>(
        self,
        f: impl Fn(&mut F, F, &mut S, &mut F) -> F + Sync,
    ) {
        L::for_each_compensated(self, f);
    }

    /// Whether [`Step::for_each_compensated`] hands its closure the key's Kahan compensation:
    /// parameters of a low-precision type written with [`Rounding::Kahan`](crate::Rounding).
    pub fn compensated(&self) -> bool {
        matches!(self.write, Write::Kahan(_))
    }

    /// Sums `f(p, g, slots)` (`K` numbers per element) over the key's elements, as they are
    /// stored, loaded into `F`, without writing anything: the per-tensor reductions that come
    /// before an elementwise pass (StableAdamW's mean), on every layout. The order of additions
    /// is fixed, as in [`Parts::sum`].
    ///
    /// # Panics
    ///
    /// As [`Step::for_each`].
    #[inline]
    pub fn sum<S: Slots<F>, const K: usize>(&mut self, f: impl Fn(F, F, &S) -> [F; K]) -> [F; K] {
        debug_assert!(
            matches!(self.scope, Scope::Key | Scope::Global),
            "a rule summed over a key without declaring Scope::Key"
        );
        L::sum(self, f)
    }

    /// The number of elements of the key's parameter.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether the key's parameter has no elements.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Whether parameters and state are stored in `F` ([`Native`]).
    pub fn is_native(&self) -> bool {
        L::NATIVE
    }

    /// The parameter, the gradient, the key's whole state and its scratch space, for rules that
    /// are not elementwise. Such rules set [`Rule::SCOPE`](super::Rule::SCOPE) to
    /// [`Scope::Tensor`], and the engine runs them on native layouts only.
    pub fn parts(self) -> Parts<'a, F> {
        debug_assert!(
            self.scope == Scope::Tensor,
            "a rule took whole tensors without declaring Scope::Tensor"
        );
        L::parts(self)
    }
}
