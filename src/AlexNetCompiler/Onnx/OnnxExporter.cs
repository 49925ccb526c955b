using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using AlexNetCompiler.Cpu;
using AlexNetCompiler.Onnx.Protobuf;
using Google.Protobuf;

namespace AlexNetCompiler.Onnx;

/// <summary>What <see cref="OnnxExporter"/> writes besides the graph.</summary>
/// <param name="IncludeSoftmax">End the graph with a Softmax: the output is "probabilities" instead of "logits".</param>
/// <param name="Metadata">Key-value pairs stored as the model's metadata_props (written in key order).</param>
public sealed record OnnxExportOptions(bool IncludeSoftmax = false, IReadOnlyDictionary<string, string>? Metadata = null);

/// <summary>
/// Writes any generated network as an ONNX model (IR version <see cref="IrVersion"/>, opset <see cref="Opset"/>) for
/// inference: input "input" [batch, C, H, W] float32 with a symbolic batch dimension, output "logits" [batch, classes]
/// (or "probabilities"), every parameter an initializer named by its state-dict name. docs/onnx.md has the op mapping.
/// The same network and parameters always give the same bytes.
/// </summary>
public static class OnnxExporter
{
    /// <summary>The ONNX operator set every node is written against (ONNX 1.12).</summary>
    public const int Opset = 17;

    /// <summary>The IR version of opset 17's release.</summary>
    public const long IrVersion = 8;

    public const string InputName = "input", LogitsName = "logits", ProbabilitiesName = "probabilities";

    /// <summary>The symbolic name of the batch dimension of the input and the output.</summary>
    public const string BatchDimension = "batch";

    /// <summary>
    /// Writes the model to <paramref name="path"/> through a temporary file in the same folder that is renamed over it,
    /// so that a failed export never leaves a torn file behind.
    /// </summary>
    public static void Export(NetworkDescriptor network, ReadOnlySpan<float> parameters, string path, OnnxExportOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ModelProto model = BuildModel(network, parameters, options ?? new OnnxExportOptions());
        string fullPath = Path.GetFullPath(path);
        string temporaryPath = $"{fullPath}.{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}." +
                               $"{RandomNumberGenerator.GetHexString(16, lowercase: true)}.tmp";
        try
        {
            using (var stream = new FileStream(temporaryPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                model.WriteTo(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporaryPath, fullPath, overwrite: true);
        }
        catch (Exception e)
        {
            try { File.Delete(temporaryPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            if (e is IOException or UnauthorizedAccessException)
                throw new IOException($"{fullPath}: the ONNX model could not be written ({e.Message.TrimEnd('.')}).", e);
            throw;
        }
    }

    /// <summary>Writes the model to a stream.</summary>
    public static void Export(NetworkDescriptor network, ReadOnlySpan<float> parameters, Stream destination, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        BuildModel(network, parameters, options ?? new OnnxExportOptions()).WriteTo(destination);
    }

    internal static ModelProto BuildModel(NetworkDescriptor network, ReadOnlySpan<float> parameters, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(options);
        if (parameters.Length != network.ParameterCount)
            throw new ArgumentException($"ONNX export of {network.Name}: the parameter buffer has {parameters.Length} floats, the network {network.ParameterCount}.", nameof(parameters));
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("ONNX raw tensor data is little-endian; exporting from a big-endian machine is not supported.");

        var graph = new GraphProto { Name = network.Name };
        foreach (ParameterDescriptor parameter in network.Parameters)
            graph.Initializer.Add(FloatTensor(parameter.Name, parameter.Shape, parameters.Slice(parameter.Offset, parameter.Length)));

        var builder = new GraphBuilder(graph);
        foreach (LayerDescriptor layer in network.Layers) builder.Add(layer, network);
        string outputName = options.IncludeSoftmax ? ProbabilitiesName : LogitsName;
        if (options.IncludeSoftmax) builder.Node("Softmax", "softmax", [builder.Current], ProbabilitiesName, Int("axis", 1));
        else builder.RenameCurrent(LogitsName);

        graph.Input.Add(FloatValue(InputName, network.InputChannels, network.InputHeight, network.InputWidth));
        graph.Output.Add(FloatValue(outputName, network.ClassCount));
        ThrowIfValueNamesRepeat(network, graph);

        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "AlexNetCompiler",
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString(3) ?? "",
            DocString = $"{network.Name}: input '{InputName}' [{BatchDimension}, {network.InputChannels}, {network.InputHeight}, " +
                        $"{network.InputWidth}] float32, output '{outputName}' [{BatchDimension}, {network.ClassCount}].",
            Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        if (options.Metadata is not null)
        {
            foreach (var (key, value) in options.Metadata.OrderBy(entry => entry.Key, StringComparer.Ordinal))
                model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        }
        return model;
    }

    /// <summary>
    /// Values are named after the layers that compute them, and a layer's Name is the user's: one named like another
    /// value ("input", "flatten", "logits", or "x.weight") would make a graph that ONNX Runtime refuses to load.
    /// </summary>
    private static void ThrowIfValueNamesRepeat(NetworkDescriptor network, GraphProto graph)
    {
        var names = new HashSet<string>(StringComparer.Ordinal) { InputName };
        IEnumerable<string> values = graph.Initializer.Select(tensor => tensor.Name).Concat(graph.Node.SelectMany(node => node.Output));
        foreach (string name in values)
        {
            if (!names.Add(name))
                throw new ArgumentException($"ONNX export of {network.Name}: two values would be named '{name}'; " +
                    "give the layer of that name another Name.", nameof(network));
        }
    }

    /// <summary>Appends the nodes of one layer after another, tracking the value that holds the output so far.</summary>
    private sealed class GraphBuilder(GraphProto graph)
    {
        /// <summary>The name of the value the next layer reads.</summary>
        public string Current { get; private set; } = InputName;

        // Dense layers read [batch, features]: the first one flattens the [batch, C, H, W] feature map.
        private bool _flattened;

        public void Add(LayerDescriptor layer, NetworkDescriptor network)
        {
            switch (layer.Kind)
            {
                case LayerKind.Conv2d:
                    var conv = Hyperparameters<Conv2dHyperparameters>(layer);
                    Node("Conv", layer.Name, WeightAndBias(network, layer, conv.Bias), layer.Name,
                        Ints("kernel_shape", conv.KernelHeight, conv.KernelWidth),
                        Ints("strides", conv.StrideHeight, conv.StrideWidth),
                        Ints("pads", conv.PaddingHeight, conv.PaddingWidth, conv.PaddingHeight, conv.PaddingWidth),
                        Int("group", conv.Groups));
                    break;
                case LayerKind.Relu:
                    Node("Relu", layer.Name, [Current], layer.Name);
                    break;
                case LayerKind.Lrn:
                    var lrn = Hyperparameters<LrnHyperparameters>(layer);
                    // ONNX divides alpha by size (as PyTorch does); ours is the paper's plain-sum alpha.
                    Node("LRN", layer.Name, [Current], layer.Name,
                        Int("size", lrn.Size), Float("alpha", lrn.Alpha * lrn.Size), Float("beta", lrn.Beta), Float("bias", lrn.K));
                    break;
                case LayerKind.MaxPool:
                    var pool = Hyperparameters<MaxPoolHyperparameters>(layer);
                    // ONNX max pooling never picks a padded cell, which is -infinity padding; ceil_mode 0 is floor mode.
                    Node("MaxPool", layer.Name, [Current], layer.Name,
                        Ints("kernel_shape", pool.KernelHeight, pool.KernelWidth),
                        Ints("strides", pool.StrideHeight, pool.StrideWidth),
                        Ints("pads", pool.PaddingHeight, pool.PaddingWidth, pool.PaddingHeight, pool.PaddingWidth),
                        Int("ceil_mode", 0));
                    break;
                case LayerKind.AdaptiveAvgPool:
                    AddAdaptiveAvgPool(layer);
                    break;
                case LayerKind.Dropout:
                    break; // the identity at inference
                case LayerKind.Dense:
                    var dense = Hyperparameters<DenseHyperparameters>(layer);
                    if (!_flattened)
                    {
                        Node("Flatten", "flatten", [Current], "flatten", Int("axis", 1));
                        _flattened = true;
                    }
                    Node("Gemm", layer.Name, WeightAndBias(network, layer, dense.Bias), layer.Name, Int("transB", 1));
                    break;
                case LayerKind.SoftmaxCrossEntropy:
                    break; // the loss head: the graph ends at its logits
                default:
                    throw new NotSupportedException($"ONNX export: layer {layer.Name} is a {layer.Kind}, which the exporter does not know.");
            }
        }

        private static T Hyperparameters<T>(LayerDescriptor layer) where T : LayerHyperparameters =>
            layer.Hyperparameters as T
            ?? throw new InvalidDataException($"ONNX export: layer {layer.Name} ({layer.Kind}) has no {typeof(T).Name}.");

        /// <summary>
        /// PyTorch's adaptive average pool: nothing where it is the identity, an AveragePool where the sizes divide (every
        /// bin the same size, no overlap), else the pool as two constant matrices, rows then columns: each output
        /// averages a rectangle, which is the mean over its rows of the means over its columns.
        /// </summary>
        private void AddAdaptiveAvgPool(LayerDescriptor layer)
        {
            int inHeight = layer.InputShape[1], inWidth = layer.InputShape[2];
            int outHeight = layer.OutputShape[1], outWidth = layer.OutputShape[2];
            if (inHeight == outHeight && inWidth == outWidth) return;
            if (inHeight % outHeight == 0 && inWidth % outWidth == 0)
            {
                int kernelHeight = inHeight / outHeight, kernelWidth = inWidth / outWidth;
                Node("AveragePool", layer.Name, [Current], layer.Name,
                    Ints("kernel_shape", kernelHeight, kernelWidth), Ints("strides", kernelHeight, kernelWidth));
                return;
            }
            if (inHeight != outHeight)
            {
                // [OH, H] x [batch, C, H, W] -> [batch, C, OH, W]
                string rows = layer.Name + ".row_pool";
                graph.Initializer.Add(FloatTensor(rows, [outHeight, inHeight], PoolingMatrix(inHeight, outHeight, transposed: false)));
                Node("MatMul", rows, [rows, Current], inWidth == outWidth ? layer.Name : rows + ".output");
            }
            if (inWidth != outWidth)
            {
                // [batch, C, OH, W] x [W, OW] -> [batch, C, OH, OW]
                string columns = layer.Name + ".column_pool";
                graph.Initializer.Add(FloatTensor(columns, [inWidth, outWidth], PoolingMatrix(inWidth, outWidth, transposed: true)));
                Node("MatMul", columns, [Current, columns], layer.Name);
            }
        }

        /// <summary>The weights of the bins along one axis: [output, input], or [input, output] transposed.</summary>
        private static float[] PoolingMatrix(int input, int output, bool transposed)
        {
            var matrix = new float[output * input];
            for (int o = 0; o < output; o++)
            {
                int start = AdaptiveAvgPoolGeometry.BinStart(o, input, output), end = AdaptiveAvgPoolGeometry.BinEnd(o, input, output);
                for (int i = start; i < end; i++) matrix[transposed ? i * output + o : o * input + i] = 1f / (end - start);
            }
            return matrix;
        }

        public void Node(string opType, string name, string[] inputs, string output, params AttributeProto[] attributes)
        {
            var node = new NodeProto { OpType = opType, Name = name };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            node.Attribute.AddRange(attributes);
            graph.Node.Add(node);
            Current = output;
        }

        /// <summary>Gives the last node's output the graph output's name (nothing reads it yet).</summary>
        public void RenameCurrent(string name)
        {
            graph.Node[^1].Output[0] = name;
            Current = name;
        }

        /// <summary>The state-dict name of a layer's weight or bias: "{layer}.weight" or "{layer}.bias".</summary>
        private static string Parameter(NetworkDescriptor network, LayerDescriptor layer, ParameterRole role)
        {
            string name = layer.Name + (role == ParameterRole.Weight ? ".weight" : ".bias");
            return network.Parameters.Any(p => p.Name == name)
                ? name
                : throw new InvalidDataException($"ONNX export: {network.Name} has no parameter {name} for layer {layer.Name}.");
        }

        /// <summary>The inputs of a Conv or Gemm: the value so far, the weight, and the bias where the layer has one.</summary>
        private string[] WeightAndBias(NetworkDescriptor network, LayerDescriptor layer, bool bias)
        {
            string weight = Parameter(network, layer, ParameterRole.Weight);
            return bias ? [Current, weight, Parameter(network, layer, ParameterRole.Bias)] : [Current, weight];
        }
    }

    private static TensorProto FloatTensor(string name, int[] shape, ReadOnlySpan<float> values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        foreach (int dimension in shape) tensor.Dims.Add(dimension);
        tensor.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values));
        return tensor;
    }

    /// <summary>A float32 graph input or output: [batch, dimensions...].</summary>
    private static ValueInfoProto FloatValue(string name, params int[] dimensions)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = BatchDimension });
        foreach (int dimension in dimensions) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = dimension });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    private static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }
}
