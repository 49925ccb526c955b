using System.Globalization;
using System.Text.Json;
using AlexNetCompiler;
using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Cpu;

namespace GpuCheck;

/// <summary>
/// Writes what eng/pytorch_reference.py needs to compute a checked network exactly as the check does, once in FP32
/// and once in TF32: for each network, DIR/KEY.json (layer table, parameter names and shapes, batch, seeds, SGD
/// settings) and DIR/KEY.safetensors (the starting parameters by state-dict name, "input", "labels" as floats, and
/// every dropout mask the check draws, "dropout.LAYER.SEED", 1 for kept and 0 for dropped). The masks come from
/// <see cref="DropoutKernels.Keep"/>, so PyTorch drops exactly the elements our kernels drop.
/// </summary>
internal static class ReferenceExport
{
    public static void Write(string directory, IEnumerable<CheckedNetwork> networks, int? checkBatch)
    {
        Directory.CreateDirectory(directory);
        foreach (CheckedNetwork net in networks)
        {
            int batch = checkBatch ?? net.DefaultCheckBatch;
            var (parameters, input, labels) = CpuReference.Inputs(net, batch);
            NetworkDescriptor model = net.Model;
            ulong[] seeds = [CpuReference.DropoutSeed, .. Enumerable.Range(0, CpuReference.Steps).Select(CpuReference.StepSeed)];

            var tensors = new List<SafeTensorData>();
            foreach (ParameterDescriptor p in model.Parameters)
                tensors.Add(new SafeTensorData(p.Name, p.Shape, parameters.AsMemory(p.Offset, p.Length)));
            tensors.Add(new SafeTensorData("input", [batch, model.InputChannels, model.InputHeight, model.InputWidth], input));
            tensors.Add(new SafeTensorData("labels", [batch], labels.Select(l => (float)l).ToArray()));
            foreach (LayerDescriptor layer in model.Layers.Where(l => l.Kind == LayerKind.Dropout))
            {
                float p = DropProbability(layer);
                int[] inputShape = layer.Index == 0 ? [model.InputChannels, model.InputHeight, model.InputWidth] : model.Layers[layer.Index - 1].OutputShape;
                int length = batch * inputShape.Aggregate(1, (a, b) => a * b);
                foreach (ulong seed in seeds)
                {
                    ulong layerSeed = DropoutKernels.LayerSeed(seed, layer.Index);
                    var mask = new float[length];
                    for (int i = 0; i < length; i++) mask[i] = DropoutKernels.Keep(p, layerSeed, i) ? 1f : 0f;
                    tensors.Add(new SafeTensorData($"dropout.{layer.Index}.{seed}", [batch, .. inputShape], mask));
                }
            }
            SafeTensors.Write(Path.Combine(directory, net.Key + ".safetensors"), tensors);
            WriteDescription(Path.Combine(directory, net.Key + ".json"), net, batch, seeds);
            Console.WriteLine($"Exported {net.Key}: batch {batch}, {model.Parameters.Count} parameter tensors, {tensors.Count - model.Parameters.Count - 2} dropout masks");
        }
    }

    /// <summary>The drop probability from the layer table's details ("p=0.5").</summary>
    private static float DropProbability(LayerDescriptor layer) =>
        layer.Details.StartsWith("p=", StringComparison.Ordinal) && float.TryParse(layer.Details.AsSpan(2), NumberStyles.Float, CultureInfo.InvariantCulture, out float p)
            ? p
            : throw new InvalidDataException($"{layer.Name}: dropout details '{layer.Details}' do not start with 'p=<probability>'.");

    private static void WriteDescription(string path, CheckedNetwork net, int batch, ulong[] seeds)
    {
        NetworkDescriptor model = net.Model;
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("network", model.Name);
        json.WriteString("key", net.Key);
        WriteInts(json, "input_shape", [model.InputChannels, model.InputHeight, model.InputWidth]);
        json.WriteNumber("classes", model.ClassCount);
        json.WriteNumber("batch", batch);
        json.WriteStartArray("layers");
        foreach (LayerDescriptor layer in model.Layers)
        {
            json.WriteStartObject();
            json.WriteNumber("index", layer.Index);
            json.WriteString("name", layer.Name);
            json.WriteString("kind", layer.Kind.ToString());
            WriteInts(json, "output_shape", layer.OutputShape);
            json.WriteString("details", layer.Details);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("parameters");
        foreach (ParameterDescriptor p in model.Parameters)
        {
            json.WriteStartObject();
            json.WriteString("name", p.Name);
            WriteInts(json, "shape", p.Shape);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteNumber("loss_dropout_seed", seeds[0]);
        json.WriteStartArray("step_dropout_seeds");
        foreach (ulong seed in seeds.Skip(1)) json.WriteNumberValue(seed);
        json.WriteEndArray();
        json.WriteStartObject("sgd");
        json.WriteNumber("lr", CpuReference.Sgd.LearningRate);
        json.WriteNumber("momentum", CpuReference.Sgd.Momentum);
        json.WriteNumber("weight_decay", CpuReference.Sgd.WeightDecay);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteInts(Utf8JsonWriter json, string name, IEnumerable<int> values)
    {
        json.WriteStartArray(name);
        foreach (int v in values) json.WriteNumberValue(v);
        json.WriteEndArray();
    }
}
