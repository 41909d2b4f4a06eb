//! Declarations the algorithm files share, so that each file holds only what is its own.

/// Builder methods that each set one field of an optimizer's rule:
/// `setters!(Alias { /// docs \n name: type, ... })`.
/// `setters!(Alias [r => r.0] { ... })` sets fields of `r.0` instead (a rule that wraps its
/// algorithm's transform).
macro_rules! setters {
    ($alias:ident { $($body:tt)* }) => {
        setters!($alias [r => r] { $($body)* });
    };
    ($alias:ident [$r:ident => $target:expr] { $($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)? }) => {
        impl<F: $crate::Scalar> $alias<F> {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(self, $name: $ty) -> Self {
                    self.with(|$r| $target.$name = $name)
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
    ($rule:ty [$s:ident => $target:expr]: betas) => {
        impl $crate::HasBetas for $rule {
            fn betas(&mut $s) -> &mut [f64; 2] {
                &mut $target.betas
            }
        }
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
        shares!($rule [self => self]: betas);
    };
}

/// The methods of [`Rule`](crate::Rule) or [`Transform`](crate::transform::Transform) that expose
/// the fields schedules move: `hyperparameters!(Momentum => (betas[0]), WeightDecay =>
/// (options.weight_decay))`, each a [`Hyperparameter`](crate::Hyperparameter) and its field.
macro_rules! hyperparameters {
    ($($h:ident => ($($field:tt)+)),+ $(,)?) => {
        fn hyperparameter(&self, h: $crate::Hyperparameter) -> Option<f64> {
            match h {
                $($crate::Hyperparameter::$h => Some(self.$($field)+),)+
                #[allow(unreachable_patterns)]
                _ => None,
            }
        }

        fn set_hyperparameter(&mut self, h: $crate::Hyperparameter, value: f64) {
            match h {
                $($crate::Hyperparameter::$h => self.$($field)+ = value,)+
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
    };
}

/// Implements the [`Optimizer`](crate::Optimizer) methods that a wrapper passes to the optimizer
/// it wraps: the one way to forward, for this crate's wrappers and for anyone else's (ndoptim-mpi's
/// included). [`Optimizer`](crate::Optimizer) has no default methods, so a wrapper that forgets
/// one does not compile; this macro writes the usual ones.
///
/// `forward_optimizer!(F, field: groups…)` inside `impl Optimizer<F> for …`, where `field` holds
/// an `Optimizer<F>` and each group is one of:
///
/// - `learning_rate`: `learning_rate` and `set_learning_rate`;
/// - `hyperparameters`: `hyperparameter` and `set_hyperparameter`;
/// - `modes`: `eval`, `train`, `eval_named` and `train_named`;
/// - `reset`, `name`: the method of that name;
/// - `scope`: `scope` and `global` (what the wrapped optimizer's step reaches, and its
///   optimizer-wide scalars);
/// - `update_named_through_map`: `update_named` through copies into maps and this wrapper's own
///   `update` ([`named::through_map`](crate::named::through_map));
/// - `named_modes_through_map`: `eval_named` and `train_named` through copies into maps and this
///   wrapper's own `eval` and `train` (for wrappers whose modes do more than the inner one's);
/// - `wrapper`: the five groups a wrapper that steps through its own `update` usually takes,
///   `learning_rate`, `hyperparameters`, `modes`, `scope` and `update_named_through_map`.
///
/// ```
/// use ndoptim::{Error, Optimizer, Params, Scalar};
///
/// /// Counts the steps of the optimizer it wraps.
/// #[derive(Debug)]
/// struct Counted<O> {
///     inner: O,
///     steps: u64,
/// }
///
/// impl<F: Scalar, O: Optimizer<F>> Optimizer<F> for Counted<O> {
///     fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
///         self.inner.update(params, grads)?;
///         self.steps += 1;
///         Ok(())
///     }
///
///     fn update_named(&mut self, items: &mut [ndoptim::Named<'_, F>]) -> Result<(), Error> {
///         self.inner.update_named(items)?;
///         self.steps += 1;
///         Ok(())
///     }
///
///     ndoptim::forward_optimizer!(
///         F,
///         inner: learning_rate,
///         hyperparameters,
///         modes,
///         reset,
///         name,
///         scope,
///     );
/// }
///
/// let mut opt = Counted { inner: ndoptim::Adam::<f64>::default(), steps: 0 };
/// let beta1 = opt.hyperparameter(ndoptim::Hyperparameter::Momentum);
/// assert_eq!((opt.name(), beta1), ("Adam", Some(0.9)));
/// ```
#[macro_export]
macro_rules! forward_optimizer {
    ($F:ty, $field:ident: $($group:ident),+ $(,)?) => {
        $($crate::forward_optimizer!(@$group $F, $field);)+
    };
    (@wrapper $F:ty, $field:ident) => {
        $crate::forward_optimizer!(
            $F,
            $field: learning_rate,
            hyperparameters,
            modes,
            scope,
            update_named_through_map
        );
    };
    (@learning_rate $F:ty, $field:ident) => {
        fn learning_rate(&self) -> f64 {
            self.$field.learning_rate()
        }

        fn set_learning_rate(&mut self, lr: f64) -> ::core::result::Result<(), $crate::Error> {
            self.$field.set_learning_rate(lr)
        }
    };
    (@hyperparameters $F:ty, $field:ident) => {
        fn hyperparameter(&self, h: $crate::Hyperparameter) -> ::core::option::Option<f64> {
            self.$field.hyperparameter(h)
        }

        fn set_hyperparameter(
            &mut self,
            h: $crate::Hyperparameter,
            value: f64,
        ) -> ::core::result::Result<(), $crate::Error> {
            self.$field.set_hyperparameter(h, value)
        }
    };
    (@modes $F:ty, $field:ident) => {
        fn eval(&mut self, params: &mut $crate::Params<$F>) -> ::core::result::Result<(), $crate::Error> {
            self.$field.eval(params)
        }

        fn train(&mut self, params: &mut $crate::Params<$F>) -> ::core::result::Result<(), $crate::Error> {
            self.$field.train(params)
        }

        fn eval_named(
            &mut self,
            params: &mut [$crate::Named<'_, $F>],
        ) -> ::core::result::Result<(), $crate::Error> {
            self.$field.eval_named(params)
        }

        fn train_named(
            &mut self,
            params: &mut [$crate::Named<'_, $F>],
        ) -> ::core::result::Result<(), $crate::Error> {
            self.$field.train_named(params)
        }
    };
    (@reset $F:ty, $field:ident) => {
        fn reset(&mut self) {
            self.$field.reset();
        }
    };
    (@name $F:ty, $field:ident) => {
        fn name(&self) -> &'static str {
            self.$field.name()
        }
    };
    (@scope $F:ty, $field:ident) => {
        fn scope(&self) -> $crate::Scope {
            self.$field.scope()
        }

        fn global(&self, name: &str) -> ::core::option::Option<f64> {
            self.$field.global(name)
        }
    };
    (@update_named_through_map $F:ty, $field:ident) => {
        fn update_named(
            &mut self,
            params: &mut [$crate::Named<'_, $F>],
        ) -> ::core::result::Result<(), $crate::Error> {
            $crate::named::through_map(params, |p, g| self.update(p, g))
        }
    };
    (@named_modes_through_map $F:ty, $field:ident) => {
        fn eval_named(
            &mut self,
            params: &mut [$crate::Named<'_, $F>],
        ) -> ::core::result::Result<(), $crate::Error> {
            $crate::named::through_map(params, |p, _| self.eval(p))
        }

        fn train_named(
            &mut self,
            params: &mut [$crate::Named<'_, $F>],
        ) -> ::core::result::Result<(), $crate::Error> {
            $crate::named::through_map(params, |p, _| self.train(p))
        }
    };
}

/// Builder methods of a transform, each setting one field:
/// `builders!(Type { /// docs \n name: type, ... })`.
macro_rules! builders {
    ($ty:ident { $($(#[$doc:meta])* $name:ident: $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, $name: $t) -> Self {
                    self.$name = $name;
                    self
                }
            )*
        }
    };
}

/// The [`Rule`](crate::Rule) methods of an algorithm that is a chain of transforms, inside its
/// `impl Rule`: `chained!(self => chain!(self.0, ScaleByLearningRate))`. The chain is built from
/// the rule's hyperparameters at each use (a copy of a few numbers).
macro_rules! chained {
    ($self:ident => $chain:expr) => {
        fn validate(&$self) -> Result<(), $crate::Error> {
            $crate::transform::Transform::<F>::validate(&$chain)
        }

        fn slot_names(&$self) -> Vec<&'static str> {
            $crate::transform::Transform::<F>::slot_names(&$chain)
        }

        fn step<L: $crate::Layout<F>>(&$self, step: $crate::Step<'_, F, L>, _: &mut ()) {
            $crate::transform::run(&$chain, step);
        }
    };
}

/// The builder methods of a wrapper whose hyperparameters live in the rule of its engine
/// `state`, each setting one field: `rule_builders!(/// doc\n momentum: f64, ...)`.
macro_rules! rule_builders {
    ($($(#[$doc:meta])* $name:ident: $t:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $name(mut self, $name: $t) -> Self {
                self.state.rule_mut().$name = $name;
                self
            }
        )*
    };
}

/// The methods of a wrapper around a base optimizer (its field `base`, a `Buffered`) whose own
/// state is the engine `state` of rule `$rule`: `base`, `base_mut`, `checkpoint` (holding
/// `$what`) and `restore`.
macro_rules! base_and_checkpoint {
    ($rule:ty, $scalars:ty, $what:literal) => {
        /// The base optimizer.
        pub fn base(&self) -> &O {
            &self.base
        }

        /// The base optimizer, to change or checkpoint it.
        pub fn base_mut(&mut self) -> &mut O {
            &mut self.base
        }

        #[doc = concat!($what, ". Checkpoint the base optimizer beside it.")]
        pub fn checkpoint(&self) -> $crate::checkpoint::Checkpoint<$rule, $scalars, F> {
            self.state.checkpoint()
        }

        /// Loads a checkpoint taken by `checkpoint`, checked whole first.
        ///
        /// # Errors
        ///
        /// As [`Engine::restore`](crate::Engine::restore): after an error nothing has changed.
        pub fn restore(
            &mut self,
            checkpoint: $crate::checkpoint::Checkpoint<$rule, $scalars, F>,
        ) -> Result<(), $crate::Error> {
            self.state.restore(checkpoint)
        }
    };
}
