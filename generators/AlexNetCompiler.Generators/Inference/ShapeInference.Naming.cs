using System;
using System.Collections.Generic;
using AlexNetCompiler.Generators.Diagnostics;
using AlexNetCompiler.Generators.Model;

namespace AlexNetCompiler.Generators.Inference;

// Layer names and C# identifiers: the torchvision convention unless a layer gives its own Name.
internal static partial class ShapeInference
{
    private sealed partial class Builder
    {
        // Default names follow torchvision's AlexNet: "features.{i}" before the classifier, "classifier.{j}" from the
        // first Dropout or Dense after the last spatial layer on. Identifiers count each kind: Conv1, Relu1, Pool1...
        private (string Name, string Identifier)[] NameLayers(List<LayerSpec> body, LayerSpec? lossSpec)
        {
            int lastSpatial = -1;
            for (int i = 0; i < body.Count; i++) if (IsSpatial(body[i].Kind)) lastSpatial = i;
            int classifierStart = body.Count;
            for (int i = lastSpatial + 1; i < body.Count; i++)
            {
                if (body[i].Kind is LayerKind.Dropout or LayerKind.Dense) { classifierStart = i; break; }
            }

            var result = new (string Name, string Identifier)[body.Count + 1];
            var ordinals = new Dictionary<LayerKind, int>();
            var byName = new Dictionary<string, int>(StringComparer.Ordinal);
            var byIdentifier = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i <= body.Count; i++)
            {
                LayerSpec? layer = i < body.Count ? body[i] : lossSpec;
                LayerKind kind = i < body.Count ? body[i].Kind : LayerKind.SoftmaxCrossEntropy;
                ordinals.TryGetValue(kind, out int ordinal);
                ordinals[kind] = ++ordinal;

                string defaultName = i == body.Count ? "loss" : i < classifierStart ? $"features.{i}" : $"classifier.{i - classifierStart}";
                string defaultIdentifier = i == body.Count ? "Loss" : IdentifierStem(kind) + ordinal;
                string name = defaultName, identifier = defaultIdentifier;
                string label = $"Layer {i} ({kind})";

                if (layer?.Name is { } given)
                {
                    string fromName = IdentifierFromName(given);
                    if (given.Trim().Length == 0)
                    {
                        Report(DiagnosticDescriptors.InvalidLayerName, layer.LocationOf("Name"), label, given, "it is empty");
                    }
                    else if (fromName.Length == 0)
                    {
                        Report(DiagnosticDescriptors.InvalidLayerName, layer.LocationOf("Name"), label, given, "it has no letter or digit to make a C# identifier from");
                    }
                    else
                    {
                        name = given;
                        identifier = fromName;
                    }
                }
                result[i] = (name, identifier);

                string fullLabel = $"Layer {i} '{name}' ({kind})";
                if (byName.TryGetValue(name, out int other))
                {
                    Report(DiagnosticDescriptors.DuplicateLayerName, layer?.LocationOf("Name"), fullLabel, "name", name, $"layer {other} ({KindAt(body, other)})");
                }
                else
                {
                    byName[name] = i;
                    if (byIdentifier.TryGetValue(identifier, out other))
                    {
                        Report(DiagnosticDescriptors.DuplicateLayerName, layer?.LocationOf("Name"), fullLabel, "C# identifier", identifier, $"layer {other} '{result[other].Name}' ({KindAt(body, other)})");
                    }
                    else
                    {
                        byIdentifier[identifier] = i;
                    }
                }
            }
            return result;
        }

        private static LayerKind KindAt(List<LayerSpec> body, int i) => i < body.Count ? body[i].Kind : LayerKind.SoftmaxCrossEntropy;

        private static string IdentifierStem(LayerKind kind) => kind switch
        {
            LayerKind.Conv2d => "Conv",
            LayerKind.MaxPool => "Pool",
            LayerKind.AdaptiveAvgPool => "AvgPool",
            LayerKind.SoftmaxCrossEntropy => "Loss",
            _ => kind.ToString(),
        };

        /// <summary>"features.0" -> "Features0", "conv_1a" -> "Conv1a": PascalCase of the letter/digit runs, ASCII only.</summary>
        internal static string IdentifierFromName(string name)
        {
            var sb = new System.Text.StringBuilder();
            bool startOfWord = true;
            foreach (char c in name)
            {
                bool letterOrDigit = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if (!letterOrDigit)
                {
                    startOfWord = true;
                    continue;
                }
                sb.Append(startOfWord ? char.ToUpperInvariant(c) : c);
                startOfWord = false;
            }
            if (sb.Length > 0 && char.IsDigit(sb[0])) sb.Insert(0, "Layer");
            return sb.ToString();
        }
    }
}
