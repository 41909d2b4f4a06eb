//! Evaluation and training modes ([`Optimizer::eval`](crate::Optimizer::eval)(crate::Optimizer::eval)): moving every
//! parameter with state to the point of the mode, for rules that have modes (Schedule-Free).

use ndarray::ArrayRefD;

use super::{Engine, Layout, Mode, Params, Rule, Scalar};
use crate::{Error, Named};

impl<R: Rule<F>, F: Scalar, L: Layout<F>> Engine<R, F, L> {
    /// Whether a switch to `mode` moves anything (the rule has modes and is in another one),
    /// after checking every parameter's shape against its state.
    pub(super) fn switches<'p>(
        &self,
        mode: Mode,
        shapes: impl Iterator<Item = (&'p str, &'p [usize])>,
    ) -> Result<bool, Error> {
        if self.rule.mode().is_none_or(|m| m == mode) {
            return Ok(false);
        }
        for (key, shape) in shapes {
            self.check_state(key, shape)?;
        }
        Ok(true)
    }

    /// Moves every parameter that has state to the point of `mode`, once [`Engine::switches`]
    /// said yes.
    pub(super) fn switch<'p>(
        &mut self,
        mode: Mode,
        params: impl Iterator<Item = (&'p str, &'p mut ArrayRefD<L::Param>)>,
    ) where
        F: 'p,
    {
        for (key, p) in params {
            if let Some(e) = self.index.get(key).and_then(|&i| self.entries.get(i)) {
                L::switch(&self.rule, mode, p, &e.slots);
            }
        }
        self.rule.set_mode(mode);
    }

    /// [`Optimizer::eval`](crate::Optimizer::eval) and [`Optimizer::train`](crate::Optimizer::train) on a map.
    pub(super) fn switch_map(
        &mut self,
        mode: Mode,
        params: &mut Params<L::Param>,
    ) -> Result<(), Error> {
        if self.switches(mode, params.iter().map(|(k, p)| (k.as_str(), p.shape())))? {
            self.switch(mode, params.iter_mut().map(|(k, p)| (k.as_str(), &mut **p)));
        }
        Ok(())
    }

    /// [`Optimizer::eval_named`](crate::Optimizer::eval_named) and [`Optimizer::train_named`](crate::Optimizer::train_named).
    pub(super) fn switch_named(
        &mut self,
        mode: Mode,
        params: &mut [Named<'_, L::Param>],
    ) -> Result<(), Error> {
        if self.switches(mode, params.iter().map(|n| (n.key, n.param.shape())))? {
            self.switch(mode, params.iter_mut().map(|n| (n.key, &mut *n.param)));
        }
        Ok(())
    }
}
