using System.Globalization;
using System.Security.Cryptography;
using AlexNetCompiler.Training;

namespace AlexNetCompiler.Checkpoints;

/// <summary>
/// A network's parameters (and optionally its SGD state) as a safetensors file with PyTorch state-dict
/// names, so that <c>safetensors.torch.load_file</c> + <c>load_state_dict</c> read it and a file written
/// from torch parameters loads here. Optimizer velocities are stored as <c>optimizer.velocity.{name}</c>;
/// the step count, learning rate and variant, and any user metadata, in <c>__metadata__</c>.
/// </summary>
public static class Checkpoint
{
    public const string VelocityPrefix = "optimizer.velocity.";
    public const string StepCountKey = "optimizer.step_count";
    public const string LearningRateKey = "optimizer.learning_rate";
    public const string VariantKey = "optimizer.variant";
    public const string NetworkKey = "network";

    /// <summary>
    /// Writes a temporary file of its own ("{path}.{pid}.{random}.tmp"), flushes it to disk, then renames it over
    /// path: a crash never leaves a torn file, and concurrent writers never share a temporary file. See
    /// <see cref="SafeTensors.DeleteStaleTemporaryFiles"/> for the temporary files of writers that crashed.
    /// </summary>
    public static void Save(string path, NetworkDescriptor network, ReadOnlySpan<float> parameters, Sgd? optimizer = null,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (parameters.Length != network.ParameterCount)
            throw new ArgumentException($"Checkpoint '{path}': the parameter buffer has {parameters.Length} floats, {network.Name} has {network.ParameterCount}.", nameof(parameters));
        if (optimizer is not null && optimizer.Velocity.Length != network.ParameterCount)
            throw new ArgumentException($"Checkpoint '{path}': the optimizer has {optimizer.Velocity.Length} velocities, {network.Name} has {network.ParameterCount} parameters.", nameof(optimizer));

        // The writer needs memory, not spans: copy once (a checkpoint is rare and the copy is cheap next to the disk write).
        float[] parameterCopy = parameters.ToArray();
        var tensors = new List<SafeTensorData>();
        foreach (ParameterDescriptor parameter in network.Parameters)
            tensors.Add(new SafeTensorData(parameter.Name, parameter.Shape, parameterCopy.AsMemory(parameter.Offset, parameter.Length)));

        var allMetadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (metadata is not null)
            foreach (var (key, value) in metadata) allMetadata[key] = value;
        allMetadata[NetworkKey] = network.Name;
        if (optimizer is not null)
        {
            foreach (ParameterDescriptor parameter in network.Parameters)
                tensors.Add(new SafeTensorData(VelocityPrefix + parameter.Name, parameter.Shape, optimizer.Velocity.AsMemory(parameter.Offset, parameter.Length)));
            allMetadata[StepCountKey] = optimizer.StepCount.ToString(CultureInfo.InvariantCulture);
            allMetadata[LearningRateKey] = optimizer.LearningRate.ToString("R", CultureInfo.InvariantCulture);
            allMetadata[VariantKey] = optimizer.Options.Variant.ToString();
        }
        SafeTensors.Write(path, tensors, allMetadata);
    }

    /// <summary>
    /// Checks every expected tensor's presence, dtype (F32) and shape, and that the file holds no unexpected
    /// tensors (like torch's strict load_state_dict), and that every value is finite, before changing anything; then reads the parameters
    /// (and the optimizer state when <paramref name="optimizer"/> is given). Throws InvalidDataException naming
    /// the file and the first mismatch. Returns the metadata.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Load(string path, NetworkDescriptor network, Span<float> parameters, Sgd? optimizer = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (parameters.Length != network.ParameterCount)
            throw new ArgumentException($"Checkpoint '{path}': the parameter buffer has {parameters.Length} floats, {network.Name} has {network.ParameterCount}.", nameof(parameters));
        if (optimizer is not null && optimizer.Velocity.Length != network.ParameterCount)
            throw new ArgumentException($"Checkpoint '{path}': the optimizer has {optimizer.Velocity.Length} velocities, {network.Name} has {network.ParameterCount} parameters.", nameof(optimizer));
        if (!File.Exists(path))
            throw new FileNotFoundException($"Checkpoint '{path}' does not exist.", path);

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        SafeTensorHeader header = SafeTensors.ReadHeader(stream, path);

        // Validate everything first, so a bad file leaves the parameters untouched.
        var expected = new HashSet<string>(StringComparer.Ordinal);
        var plan = new List<(SafeTensorEntry Entry, ParameterDescriptor Parameter, bool IsVelocity)>();
        foreach (ParameterDescriptor parameter in network.Parameters)
        {
            plan.Add((Expect(header, parameter.Name, parameter), parameter, false));
            expected.Add(parameter.Name);
        }
        long stepCount = 0;
        if (optimizer is not null)
        {
            foreach (ParameterDescriptor parameter in network.Parameters)
                plan.Add((Expect(header, VelocityPrefix + parameter.Name, parameter), parameter, true));
            if (!header.Metadata.TryGetValue(StepCountKey, out string? stepText)
                || !long.TryParse(stepText, NumberStyles.None, CultureInfo.InvariantCulture, out stepCount))
                throw SafeTensors.Invalid(path, $"metadata '{StepCountKey}' is missing or not a non-negative integer");
        }
        foreach (SafeTensorEntry entry in header.Tensors)
        {
            bool isOptimizerState = entry.Name.StartsWith(VelocityPrefix, StringComparison.Ordinal);
            if (!expected.Contains(entry.Name) && !(isOptimizerState && expected.Contains(entry.Name[VelocityPrefix.Length..])))
                throw SafeTensors.Invalid(path, $"unexpected tensor '{entry.Name}': {network.Name} has no parameter of that name");
        }

        // NaN or infinite weights would "evaluate" to chance accuracy without a word; momentum likewise poisons training.
        foreach (var (entry, _, _) in plan)
        {
            long index = SafeTensors.FirstNonFinite(stream, header, entry);
            if (index >= 0)
                throw SafeTensors.Invalid(path, $"tensor '{entry.Name}' holds a non-finite value (NaN or infinity) at flat index {index}; the state it was saved from had diverged or the file is damaged");
        }

        foreach (var (entry, parameter, isVelocity) in plan)
        {
            Span<float> destination = isVelocity
                ? optimizer!.Velocity.AsSpan(parameter.Offset, parameter.Length)
                : parameters.Slice(parameter.Offset, parameter.Length);
            SafeTensors.ReadTensor(stream, header, entry, destination);
        }
        if (optimizer is not null)
        {
            optimizer.StepCount = stepCount;
            if (header.Metadata.TryGetValue(LearningRateKey, out string? rateText)
                && float.TryParse(rateText, NumberStyles.Float, CultureInfo.InvariantCulture, out float rate))
                optimizer.LearningRate = rate;
        }
        return header.Metadata;
    }

    /// <summary>
    /// The SHA-256 of a file's contents as lower-case hex, e.g. to check that two checkpoints written from the same
    /// state ("best" and "last") hold the same bytes.
    /// </summary>
    public static string FileSha256(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static SafeTensorEntry Expect(SafeTensorHeader header, string name, ParameterDescriptor parameter)
    {
        SafeTensorEntry entry = header.Find(name)
            ?? throw SafeTensors.Invalid(header.Path, $"missing tensor '{name}' (shape {parameter.ShapeText})");
        if (entry.DType != "F32")
            throw SafeTensors.Invalid(header.Path, $"tensor '{name}' has dtype {entry.DType}, expected F32");
        if (!entry.Shape.AsSpan().SequenceEqual(parameter.Shape.Select(d => (long)d).ToArray()))
            throw SafeTensors.Invalid(header.Path, $"tensor '{name}' has shape [{string.Join(", ", entry.Shape)}], expected {parameter.ShapeText}");
        return entry;
    }
}
