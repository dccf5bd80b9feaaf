//! Writing ONNX models: the few messages of `onnx.proto` (ONNX 1.x, IR version 8) that a
//! converted network needs, encoded with `prost`, and a small builder for graphs of standard
//! operators with float32 initializers.
//!
//! Field numbers are those of `onnx/onnx.proto`; repeated scalars are written unpacked, as that
//! file (proto2) declares them.

use std::collections::BTreeMap;

use prost::Message;

/// The ONNX IR version written (ONNX 1.10+, read by every ONNX Runtime since 1.10).
const IR_VERSION: i64 = 8;
/// `TensorProto.DataType.FLOAT`.
const FLOAT: i32 = 1;
/// `TensorProto.DataType.INT64`.
const INT64: i32 = 7;

/// `onnx.ModelProto`.
#[derive(Clone, PartialEq, prost::Message)]
struct ModelProto {
    #[prost(int64, tag = "1")]
    ir_version: i64,
    #[prost(string, tag = "2")]
    producer_name: String,
    #[prost(string, tag = "3")]
    producer_version: String,
    #[prost(string, tag = "6")]
    doc_string: String,
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    opset_import: Vec<OperatorSetIdProto>,
    #[prost(message, repeated, tag = "14")]
    metadata_props: Vec<StringStringEntryProto>,
}

/// `onnx.OperatorSetIdProto`.
#[derive(Clone, PartialEq, prost::Message)]
struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    domain: String,
    #[prost(int64, tag = "2")]
    version: i64,
}

/// `onnx.StringStringEntryProto`.
#[derive(Clone, PartialEq, prost::Message)]
struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
}

/// `onnx.GraphProto`.
#[derive(Clone, PartialEq, prost::Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<ValueInfoProto>,
}

/// `onnx.NodeProto`.
#[derive(Clone, PartialEq, prost::Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(string, tag = "4")]
    op_type: String,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeProto>,
}

/// `onnx.AttributeProto` (float, int and ints attributes).
#[derive(Clone, PartialEq, prost::Message)]
struct AttributeProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(float, optional, tag = "2")]
    f: Option<f32>,
    #[prost(int64, optional, tag = "3")]
    i: Option<i64>,
    #[prost(int64, repeated, packed = "false", tag = "8")]
    ints: Vec<i64>,
    /// `AttributeType`: FLOAT 1, INT 2, INTS 7.
    #[prost(int32, tag = "20")]
    r#type: i32,
}

/// `onnx.TensorProto` with raw little-endian data.
#[derive(Clone, PartialEq, prost::Message)]
struct TensorProto {
    #[prost(int64, repeated, packed = "false", tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
}

/// `onnx.ValueInfoProto`.
#[derive(Clone, PartialEq, prost::Message)]
struct ValueInfoProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    r#type: Option<TypeProto>,
}

/// `onnx.TypeProto` (tensor types only).
#[derive(Clone, PartialEq, prost::Message)]
struct TypeProto {
    #[prost(message, optional, tag = "1")]
    tensor_type: Option<TensorTypeProto>,
}

/// `onnx.TypeProto.Tensor`.
#[derive(Clone, PartialEq, prost::Message)]
struct TensorTypeProto {
    #[prost(int32, tag = "1")]
    elem_type: i32,
    #[prost(message, optional, tag = "2")]
    shape: Option<ShapeProto>,
}

/// `onnx.TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
struct ShapeProto {
    #[prost(message, repeated, tag = "1")]
    dim: Vec<DimensionProto>,
}

/// `onnx.TensorShapeProto.Dimension`: a fixed size or a named, free one.
#[derive(Clone, PartialEq, prost::Message)]
struct DimensionProto {
    #[prost(int64, optional, tag = "1")]
    dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    dim_param: Option<String>,
}

/// One dimension of a graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dimension {
    /// A fixed size.
    Fixed(usize),
    /// A size chosen at run time, by name (`"frames"`).
    Free(&'static str),
}

/// An attribute value of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    /// A float (`alpha` of `LeakyRelu`).
    Float(f32),
    /// An integer (`axis` of `Concat`).
    Int(i64),
    /// A list of integers (`strides`, `pads`, `dilations`).
    Ints(Vec<i64>),
}

impl Attribute {
    fn proto(self, name: &str) -> AttributeProto {
        let mut proto = AttributeProto { name: name.into(), ..Default::default() };
        match self {
            Attribute::Float(f) => (proto.f, proto.r#type) = (Some(f), 1),
            Attribute::Int(i) => (proto.i, proto.r#type) = (Some(i), 2),
            Attribute::Ints(ints) => (proto.ints, proto.r#type) = (ints, 7),
        }
        proto
    }
}

fn value_info(name: &str, dims: &[Dimension]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Dimension::Fixed(n) => DimensionProto { dim_value: Some(*n as i64), dim_param: None },
            Dimension::Free(name) => DimensionProto { dim_value: None, dim_param: Some((*name).into()) },
        })
        .collect();
    let tensor_type = TensorTypeProto { elem_type: FLOAT, shape: Some(ShapeProto { dim }) };
    ValueInfoProto { name: name.into(), r#type: Some(TypeProto { tensor_type: Some(tensor_type) }) }
}

/// A graph being built: nodes in order, float32 initializers, one float32 input and output.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    count: usize,
}

impl GraphBuilder {
    /// A float32 initializer of `shape` holding `values` (row-major); returns its name.
    ///
    /// # Panics
    /// If `values` does not fill `shape`.
    pub fn constant(&mut self, hint: &str, shape: &[usize], values: &[f32]) -> String {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "{hint}: values do not fill {shape:?}");
        let name = self.fresh(hint);
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let dims = shape.iter().map(|&d| d as i64).collect();
        self.initializers.push(TensorProto { dims, data_type: FLOAT, name: name.clone(), raw_data });
        name
    }

    /// An int64 initializer (a `Reshape` target, a `Slice` bound); returns its name.
    pub fn int64s(&mut self, hint: &str, values: &[i64]) -> String {
        let name = self.fresh(hint);
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: INT64,
            name: name.clone(),
            raw_data,
        });
        name
    }

    /// A node of the standard (`ai.onnx`) domain; returns the name of its one output.
    pub fn node(&mut self, op_type: &str, inputs: &[&str], attributes: Vec<(&str, Attribute)>) -> String {
        let output = self.fresh(&op_type.to_ascii_lowercase());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|&i| i.to_string()).collect(),
            output: vec![output.clone()],
            name: output.clone(),
            op_type: op_type.into(),
            attribute: attributes.into_iter().map(|(name, value)| value.proto(name)).collect(),
        });
        output
    }

    /// Renames the value `from` (a node output) to `to`, for the graph's named output.
    pub fn rename(&mut self, from: &str, to: &str) {
        for node in &mut self.nodes {
            for name in node.input.iter_mut().chain(&mut node.output) {
                if name == from {
                    *name = to.into();
                }
            }
        }
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.count += 1;
        format!("{hint}_{}", self.count)
    }

    /// The model file's bytes: this graph with one input and one output (float32), opset
    /// `opset` of the standard domain, and `metadata` as the model's metadata properties.
    pub fn encode(
        self,
        input: (&str, &[Dimension]),
        output: (&str, &[Dimension]),
        opset: i64,
        metadata: &BTreeMap<String, String>,
        doc: &str,
    ) -> Vec<u8> {
        let graph = GraphProto {
            node: self.nodes,
            name: "demixer".into(),
            initializer: self.initializers,
            input: vec![value_info(input.0, input.1)],
            output: vec![value_info(output.0, output.1)],
        };
        ModelProto {
            ir_version: IR_VERSION,
            producer_name: "demixer".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc.into(),
            graph: Some(graph),
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: opset }],
            metadata_props: metadata
                .iter()
                .map(|(key, value)| StringStringEntryProto { key: key.clone(), value: value.clone() })
                .collect(),
        }
        .encode_to_vec()
    }
}
