//! Pieces of the command line that live beside the options they parse (feature `cli`).
//!
//! The library's option structs derive `clap::Args` behind this feature, so a
//! default is written once: in the constant the struct's `Default` and its
//! `--flag`'s default both read.

/// A clap parser for a count of at least `min` (a usage error, exit 2, below it).
pub fn at_least(min: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(min..)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::Parser;

    use crate::model::tagger::InferenceOptions;
    use crate::model::train::TrainOptions;
    use crate::stance::train::StanceTrainOptions;

    /// Parses `args` as the flags of `T` alone.
    fn parse<T: clap::Args>(args: &[&str]) -> T {
        #[derive(Parser)]
        struct Only<T: clap::Args> {
            #[command(flatten)]
            options: T,
        }
        let argv = std::iter::once("stance").chain(args.iter().copied());
        Only::<T>::try_parse_from(argv).unwrap().options
    }

    #[test]
    fn inference_flags_default_to_the_library_defaults() {
        assert_eq!(parse::<InferenceOptions>(&[]), InferenceOptions::default());
    }

    #[test]
    fn train_ner_flags_default_to_the_library_defaults() {
        let parsed = parse::<TrainOptions>(&["--train", "a.conll"]);
        let expected = TrainOptions {
            train: vec![PathBuf::from("a.conll")],
            ..TrainOptions::default()
        };
        assert_eq!(format!("{parsed:?}"), format!("{expected:?}"));
        assert!(!parse::<TrainOptions>(&["--train", "a", "--no-casing"]).casing);
    }

    #[test]
    fn train_stance_flags_default_to_the_library_defaults() {
        let parsed = parse::<StanceTrainOptions>(&[]);
        assert_eq!(
            format!("{parsed:?}"),
            format!("{:?}", StanceTrainOptions::default())
        );
        let set = parse::<StanceTrainOptions>(&["--no-pair-targets", "--context-sentences", "2"]);
        assert!(!set.pair_targets);
        assert_eq!(set.context, 2);
    }

    #[test]
    fn counts_below_their_minimum_are_usage_errors() {
        #[derive(Parser, Debug)]
        struct Only {
            #[command(flatten)]
            options: InferenceOptions,
        }
        let err = Only::try_parse_from(["stance", "--batch-size", "0"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(Only::try_parse_from(["stance", "--context", "8"]).is_err());
    }
}
