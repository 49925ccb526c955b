using System.Xml.Linq;
using AlexNetCompiler.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;

namespace AlexNetCompiler.Generators.Tests;

/// <summary>
/// The generated class's doc comment carries the layer table (name, kind, output shape, parameters) and the totals,
/// which an IDE shows on hover; it combines with a doc comment the user writes on their own part of the class.
/// </summary>
public sealed class ClassDocumentationTests
{
    // Input 1x6x6 -> conv 2x4x4 -> pool 2x2x2 (8 features) -> 3 logits.
    private const string Layers = "[Network(Channels = 1, Height = 6, Width = 6)]\n[Conv2d(2, Kernel = 3), Relu, MaxPool(2)]\n[Dense(3)]\n";

    private static XElement Documentation(GeneratorOutcome outcome, string typeName)
    {
        INamedTypeSymbol type = outcome.Output.GetTypeByMetadataName(typeName) ?? throw new InvalidOperationException(typeName + " not found");
        // The compiler's documentation of the type: every part's doc comment, in one <member> element.
        return XElement.Parse(type.GetDocumentationCommentXml() ?? "");
    }

    [Fact]
    public void The_class_doc_comment_tabulates_every_layer_with_its_output_shape_and_parameters()
    {
        GeneratorOutcome outcome = GeneratorHarness.RunStrict("using AlexNetCompiler;\n" + Layers + "public partial class Tiny { }");
        Assert.Empty(outcome.GeneratedCodeDiagnostics);
        XElement doc = Documentation(outcome, "Tiny");

        // Conv: 2 x 1 x 3 x 3 weights + 2 biases = 20; dense: 3 x 8 weights + 3 biases = 27.
        Assert.Contains("input [1, 6, 6] (CHW), 3 classes, 47 trainable parameters", doc.Element("summary")!.Value, StringComparison.Ordinal);
        XElement table = doc.Element("remarks")!.Element("list")!;
        Assert.Equal("table", (string?)table.Attribute("type"));
        Assert.Equal(["layer", "kind", "output", "parameters"], Cells(table.Element("listheader")!));
        string[][] rows = table.Elements("item").Select(Cells).ToArray();
        Assert.Equal(
            [
                ["features.0", "Conv2d", "[2, 4, 4]", "20"],
                ["features.1", "Relu", "[2, 4, 4]", "0"],
                ["features.2", "MaxPool", "[2, 2, 2]", "0"],
                ["classifier.0", "Dense", "[3]", "27"],
                ["loss", "SoftmaxCrossEntropy", "[3]", "0"],
            ],
            rows);
        Assert.Contains("Total: 47 parameters (188 bytes of float32).", doc.Element("remarks")!.Value, StringComparison.Ordinal);
    }

    // Roslyn concatenates the doc comments of a type's partial declarations, the user's (first in the compilation)
    // before the generated one, so an IDE shows the user's summary and the generated remarks.
    [Fact]
    public void A_users_doc_comment_on_their_part_comes_first_and_nothing_is_reported()
    {
        GeneratorOutcome outcome = GeneratorHarness.RunStrict(
            "using AlexNetCompiler;\n/// <summary>My network.</summary>\n" + Layers + "public partial class Mine { }");
        Assert.Empty(outcome.CompilationErrors);
        Assert.Empty(outcome.Output.GetDiagnostics());
        XElement doc = Documentation(outcome, "Mine");
        Assert.Equal("My network.", doc.Elements("summary").First().Value);
        Assert.Single(doc.Elements("remarks"));
    }

    // Names are user text: markup stays text, and a long name wraps inside its cell.
    [Fact]
    public void Layer_names_are_escaped_in_the_table()
    {
        string name = "a <b> & \\\"c\\\" " + new string('x', 150);
        GeneratorOutcome outcome = GeneratorHarness.RunStrict(
            "using AlexNetCompiler;\n[Network(Channels = 1, Height = 6, Width = 6)]\n" +
            $"[Conv2d(2, Kernel = 3, Name = \"{name}\"), Dense(3)]\npublic partial class Named {{ }}");
        Assert.Empty(outcome.GeneratedCodeDiagnostics);
        string first = Documentation(outcome, "Named").Element("remarks")!.Element("list")!.Elements("item").First().Element("term")!.Value;
        Assert.StartsWith("a <b> & \"c\"", first.Trim(), StringComparison.Ordinal);
        Assert.Contains(new string('x', 60), first, StringComparison.Ordinal);
    }

    private static string[] Cells(XElement row) => row.Elements().Select(cell => cell.Value.Trim()).ToArray();
}
