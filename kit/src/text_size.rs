//! How much text a value holds: the bytes of every string in it (keys of maps included), found
//! by walking its `Serialize` implementation. What the host's input cap measures, and it counts
//! a field added to the model without anyone listing it.

use std::fmt;

use serde::ser::{self, Serialize};

/// Bytes of text in `value`: every string, map key and character, nothing else.
pub fn text_bytes<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut counter = TextBytes(0);
    value.serialize(&mut counter).expect("counting never fails");
    counter.0
}

struct TextBytes(usize);

/// Never raised; the serializer's error type must exist.
#[derive(Debug)]
struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("never")
    }
}

impl std::error::Error for Never {}

impl ser::Error for Never {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Never
    }
}

/// Scalars hold no text.
macro_rules! no_text {
    ($($method:ident: $type:ty),*) => {
        $(fn $method(self, _: $type) -> Result<(), Never> { Ok(()) })*
    };
}

impl ser::Serializer for &mut TextBytes {
    type Ok = ();
    type Error = Never;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    no_text!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64, serialize_f32: f32,
        serialize_f64: f64, serialize_bytes: &[u8]);

    fn serialize_char(self, c: char) -> Result<(), Never> {
        self.0 += c.len_utf8();
        Ok(())
    }
    fn serialize_str(self, text: &str) -> Result<(), Never> {
        self.0 += text.len();
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Never> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Never> {
        Ok(())
    }
    // An enum's variant is a fixed name, not text a run carries.
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), Never> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), Never> {
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self, Never> {
        Ok(self)
    }
}

/// Every compound part is walked for its elements only.
macro_rules! walk {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for &mut TextBytes {
            type Ok = ();
            type Error = Never;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), Never> {
                Ok(())
            }
        }
    };
}

walk!(SerializeSeq, serialize_element);
walk!(SerializeTuple, serialize_element);
walk!(SerializeTupleStruct, serialize_field);
walk!(SerializeTupleVariant, serialize_field);

impl ser::SerializeMap for &mut TextBytes {
    type Ok = ();
    type Error = Never;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Never> {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), Never> {
        Ok(())
    }
}

/// A struct's field names are fixed, not text: only the values count.
macro_rules! walk_fields {
    ($trait:ident) => {
        impl ser::$trait for &mut TextBytes {
            type Ok = ();
            type Error = Never;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, value: &T) -> Result<(), Never> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), Never> {
                Ok(())
            }
        }
    };
}

walk_fields!(SerializeStruct);
walk_fields!(SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::text_bytes;
    use crate::{Run, RunStatus, Step, StepStatus};

    #[test]
    fn counts_every_string_of_a_run_and_nothing_else() {
        let mut run = Run::new("run-A", RunStatus::Failure);
        run.tags.push(("team".into(), "data".into()));
        run.steps.push(Step::new("op", &["up"], StepStatus::Failure));
        run.job = Some("job".into());
        run.op_selection = Some(vec!["op*".into()]);
        // The run id twice (the run and its group member), the tag, the step's key and
        // upstream, the job, the op selection; no enum, bool or field name.
        let expected = 2 * "run-A".len() + "teamdata".len() + "opup".len() + "job".len() + "op*".len();
        assert_eq!(text_bytes(&run), expected);
    }
}
