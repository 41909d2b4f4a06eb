//! Declarations the algorithm files share, so that each file holds only what is its own.

/// Builder methods that each set one field of an optimizer's rule:
/// `setters!(Alias { /// docs \n name: type, ... })`.
macro_rules! setters {
    ($alias:ident { $($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)? }) => {
        impl<F: $crate::Scalar> $alias<F> {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(self, $name: $ty) -> Self {
                    self.with(|r| r.$name = $name)
                }
            )*
        }
    };
}

/// The shared options a rule offers, backing the builders of [`crate::parts`]: `options` (its
/// `options` field: maximize and weight decay), `decoupled` (either kind of weight decay),
/// `betas` (its `betas` field).
macro_rules! shares {
    ($rule:ty: $($what:ident),+) => {
        $(shares!(@$what $rule);)+
    };
    (@options $rule:ty) => {
        impl $crate::HasGradientOptions for $rule {
            fn gradient_options(&mut self) -> &mut $crate::GradientOptions {
                &mut self.options
            }
        }
    };
    (@decoupled $rule:ty) => {
        impl $crate::HasDecoupledWeightDecay for $rule {}
    };
    (@fully_decoupled $rule:ty) => {
        impl $crate::HasFullyDecoupledWeightDecay for $rule {}
    };
    (@betas $rule:ty) => {
        impl $crate::HasBetas for $rule {
            fn betas(&mut self) -> &mut [f64; 2] {
                &mut self.betas
            }
        }
    };
}

/// The [`Rule`](crate::Rule) methods that expose the field a momentum schedule moves:
/// `momentum_is!(betas[0])` inside the rule's `impl Rule`.
macro_rules! momentum_is {
    ($($field:tt)+) => {
        fn momentum(&self) -> Option<f64> {
            Some(self.$($field)+)
        }

        fn set_momentum(&mut self, momentum: f64) {
            self.$($field)+ = momentum;
        }
    };
}

/// The methods of an [`Optimizer`](crate::Optimizer) that wraps another in its `inner` field
/// and passes them through: the learning rate, the modes, and the second way in (through copies
/// into maps, [`crate::named::through_map`]).
macro_rules! passes_through {
    () => {
        fn update_named(
            &mut self,
            params: &mut [$crate::Named<'_, F>],
        ) -> Result<(), $crate::Error> {
            $crate::named::through_map(params, |p, g| self.update(p, g))
        }

        fn learning_rate(&self) -> f64 {
            self.inner.learning_rate()
        }

        fn set_learning_rate(&mut self, lr: f64) -> Result<(), $crate::Error> {
            self.inner.set_learning_rate(lr)
        }

        fn current_momentum(&self) -> Option<f64> {
            self.inner.current_momentum()
        }

        fn set_momentum(&mut self, momentum: f64) -> Result<(), $crate::Error> {
            self.inner.set_momentum(momentum)
        }

        fn eval(&mut self, params: &mut $crate::Params<F>) -> Result<(), $crate::Error> {
            self.inner.eval(params)
        }

        fn train(&mut self, params: &mut $crate::Params<F>) -> Result<(), $crate::Error> {
            self.inner.train(params)
        }

        fn eval_named(&mut self, params: &mut [$crate::Named<'_, F>]) -> Result<(), $crate::Error> {
            self.inner.eval_named(params)
        }

        fn train_named(
            &mut self,
            params: &mut [$crate::Named<'_, F>],
        ) -> Result<(), $crate::Error> {
            self.inner.train_named(params)
        }
    };
}
