using System.Globalization;
using AlexNetCompiler.Generators.Diagnostics;
using AlexNetCompiler.Generators.Model;
using AlexNetCompiler.Generators.Inference;
using AlexNetCompiler.Generators.Parsing;
using AlexNetCompiler.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace AlexNetCompiler.Generators.Tests;

/// <summary>
/// One test per diagnostic: the ID, the severity, the full message (which carries the arguments) and the
/// location, marked in the source with [| |]. Errors must leave nothing generated; warnings must leave code that compiles.
/// </summary>
public sealed class DiagnosticTests
{
    private const string Header = "using AlexNetCompiler;\nnamespace Specs;\n";

    private static Diagnostic AssertReports(string markup, string id, DiagnosticSeverity severity, string message, bool only = true)
    {
        (string source, TextSpan span) = Markup.Parse(Header + markup);
        GeneratorOutcome outcome = GeneratorHarness.Run(source);
        Assert.Null(outcome.Result.Exception);

        Diagnostic diagnostic = only
            ? Assert.Single(outcome.GeneratorDiagnostics)
            : Assert.Single(outcome.GeneratorDiagnostics, d => d.Id == id);
        Assert.Equal(id, diagnostic.Id);
        Assert.Equal(severity, diagnostic.Severity);
        Assert.Equal(message, diagnostic.GetMessage(CultureInfo.InvariantCulture));
        Assert.Equal("Spec.cs", diagnostic.Location.GetLineSpan().Path);
        Assert.Equal(span, diagnostic.Location.SourceSpan);
        Assert.Equal(source.Substring(span.Start, span.Length), source.Substring(diagnostic.Location.SourceSpan.Start, diagnostic.Location.SourceSpan.Length));

        if (outcome.GeneratorDiagnostics.Any(d => d.Severity == DiagnosticSeverity.Error))
        {
            Assert.Empty(outcome.Sources);
        }
        else
        {
            Assert.NotEmpty(outcome.Sources);
            Assert.Empty(outcome.CompilationErrors);
        }
        return diagnostic;
    }

    private const string Input8 = "[Network(Channels = 1, Height = 8, Width = 8)]\n";

    [Fact]
    public void ANC0001_an_exception_inside_the_generator_becomes_a_diagnostic_on_the_class()
    {
        // A spec that cannot come from the parser (a null argument entry) makes shape inference throw while
        // looking up an argument location; Build must turn that into ANC0001 instead of failing the build.
        var classLocation = new LocationInfo("Spec.cs", new TextSpan(10, 3), default);
        var broken = new LayerSpec(Model.LayerKind.Conv2d, null, null, new ArgumentLocation[] { null! }.ToEquatableArray(), Units: 0);
        var spec = new NetworkSpec("Specs", "Net", "Specs.Net", "public", EquatableArray<ContainingTypeModel>.Empty, classLocation, null,
            EquatableArray<ArgumentLocation>.Empty, 1, 8, 8, new[] { broken }.ToEquatableArray(), EquatableArray<DiagnosticInfo>.Empty, false);

        NetworkResult result = ShapeInference.Build(spec, CancellationToken.None);

        Assert.Null(result.Model);
        DiagnosticInfo diagnostic = Assert.Single(result.Diagnostics);
        Assert.Equal("ANC0001", diagnostic.Descriptor.Id);
        Assert.Equal(classLocation, diagnostic.Location);
        Assert.StartsWith("The AlexNetCompiler generator failed on 'Specs.Net': NullReferenceException", diagnostic.ToDiagnostic().GetMessage(CultureInfo.InvariantCulture));
    }

    [Fact]
    public void ANC0002_network_class_not_partial() => AssertReports(
        Input8 + "[Dense(10)]\npublic class [|Net|] { }",
        "ANC0002", DiagnosticSeverity.Error, "Network class 'Specs.Net' must be declared partial so that the generator can add its members");

    [Fact]
    public void ANC0003_generic_network_class() => AssertReports(
        Input8 + "[Dense(10)]\npublic partial class Net[|<T>|] { }",
        "ANC0003", DiagnosticSeverity.Error, "Network class 'Specs.Net<T>' cannot be generic");

    [Fact]
    public void ANC0003_static_network_class() => AssertReports(
        Input8 + "[Dense(10)]\npublic static partial class [|Net|] { }",
        "ANC0003", DiagnosticSeverity.Error, "Network class 'Specs.Net' cannot be static");

    [Fact]
    public void ANC0004_nested_in_a_non_partial_type() => AssertReports(
        "public class Outer\n{\n" + Input8 + "[Dense(10)]\npublic partial class [|Net|] { }\n}",
        "ANC0004", DiagnosticSeverity.Error, "Network class 'Specs.Outer.Net' is nested in 'Specs.Outer', which must be a non-generic partial type");

    [Fact]
    public void ANC0005_layers_split_across_partial_declarations() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3)]\npublic partial class Net { }\n[[|Dense(10)|]]\npublic partial class Net { }",
        "ANC0005", DiagnosticSeverity.Error,
        "The layer attributes of 'Specs.Net' are split across partial declarations; write them all on one declaration so their order is defined");

    [Fact]
    public void ANC0006_no_layers() => AssertReports(
        Input8 + "public partial class [|Net|] { }",
        "ANC0006", DiagnosticSeverity.Error, "Network 'Specs.Net' declares no layers; add layer attributes such as [Conv2d(...)] and [Dense(...)]");

    [Fact]
    public void ANC0007_non_positive_input_height_is_reported_at_the_argument() => AssertReports(
        "[Network(Channels = 1, [|Height = 0|], Width = 8)]\n[Dense(10)]\npublic partial class Net { }",
        "ANC0007", DiagnosticSeverity.Error, "Network 'Specs.Net': input Height must be positive (was 0)");

    [Fact]
    public void ANC0007_missing_input_width_is_reported_at_the_attribute() => AssertReports(
        "[[|Network(Channels = 1, Height = 8)|]]\n[Dense(10)]\npublic partial class Net { }",
        "ANC0007", DiagnosticSeverity.Error, "Network 'Specs.Net': input Width must be positive (was 0)");

    [Fact]
    public void ANC0008_dropout_probability_outside_0_1() => AssertReports(
        Input8 + "[Dropout([|1.5f|]), Dense(10)]\npublic partial class Net { }",
        "ANC0008", DiagnosticSeverity.Error, "Layer 0 'classifier.0' (Dropout): P must be in [0, 1) (was 1.5)");

    [Fact]
    public void ANC0008_zero_stride() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3, [|Stride = 0|]), Relu, Dense(10)]\npublic partial class Net { }",
        "ANC0008", DiagnosticSeverity.Error, "Layer 0 'features.0' (Conv2d): Stride must be positive (was 0)");

    [Fact]
    public void ANC0008_non_positive_channels() => AssertReports(
        Input8 + "[Conv2d([|-4|], Kernel = 3), Dense(10)]\npublic partial class Net { }",
        "ANC0008", DiagnosticSeverity.Error, "Layer 0 'features.0' (Conv2d): OutChannels must be positive (was -4)");

    [Fact]
    public void ANC0008_conv_without_kernel_is_reported_at_the_attribute() => AssertReports(
        Input8 + "[[|Conv2d(4)|], Dense(10)]\npublic partial class Net { }",
        "ANC0008", DiagnosticSeverity.Error, "Layer 0 'features.0' (Conv2d): Kernel must be positive (was 0)");

    [Fact]
    public void ANC0008_adaptive_average_pool_to_zero_rows() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3), AdaptiveAvgPool(6, [|OutputHeight = -1|]), Dense(10)]\npublic partial class Net { }",
        "ANC0008", DiagnosticSeverity.Error, "Layer 1 'features.1' (AdaptiveAvgPool): OutputHeight must be 0 or more (was -1)");

    [Fact]
    public void ANC0008_adaptive_average_pool_without_a_size_is_reported_at_its_argument() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3), AdaptiveAvgPool([|0|]), Dense(10)]\npublic partial class Net { }",
        "ANC0008", DiagnosticSeverity.Error, "Layer 1 'features.1' (AdaptiveAvgPool): OutputSize must be positive (was 0)");

    [Fact]
    public void ANC0016_adaptive_average_pool_after_dense() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3), Dense(16), [|AdaptiveAvgPool(2)|], Dense(10)]\npublic partial class Net { }",
        "ANC0016", DiagnosticSeverity.Error, "Layer 2 'features.2' (AdaptiveAvgPool) cannot follow layer 1 'features.1' (Dense): its input is already flattened to 16 features");

    [Fact]
    public void ANC0008_max_pool_padding_beyond_half_the_kernel() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3), MaxPool(3, [|Padding = 2|]), Dense(10)]\npublic partial class Net { }",
        "ANC0008", DiagnosticSeverity.Error, "Layer 1 'features.1' (MaxPool): Padding must be at most half the kernel (1) (was 2)");

    [Fact]
    public void ANC0008_negative_lrn_alpha() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3), Lrn([|Alpha = -1f|]), Dense(10)]\npublic partial class Net { }",
        "ANC0008", DiagnosticSeverity.Error, "Layer 1 'features.1' (Lrn): Alpha must be finite and non-negative (was -1)");

    [Fact]
    public void ANC0008_zero_lrn_k() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3), Lrn([|K = 0f|]), Dense(10)]\npublic partial class Net { }",
        "ANC0008", DiagnosticSeverity.Error, "Layer 1 'features.1' (Lrn): K must be finite and positive (was 0)");

    [Fact]
    public void ANC0009_even_lrn_size() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3), Lrn([|Size = 4|]), Dense(10)]\npublic partial class Net { }",
        "ANC0009", DiagnosticSeverity.Error, "Layer 1 'features.1' (Lrn): LRN Size must be odd so that the window is centred on each channel (was 4)");

    [Fact]
    public void ANC0010_kernel_larger_than_the_padded_input() => AssertReports(
        "[Network(Channels = 1, Height = 5, Width = 5)]\n[Conv2d(8, [|Kernel = 7|]), Dense(10)]\npublic partial class Net { }",
        "ANC0010", DiagnosticSeverity.Error,
        "Layer 0 'features.0' (Conv2d): kernel 7x7 is larger than its padded input 5x5 (input 5x5, padding 0x0), so the output would be -1x-1");

    [Fact]
    public void ANC0010_a_later_layer_whose_input_has_shrunk_too_far() => AssertReports(
        // conv: floor((8 - 3) / 5) + 1 = 2, so the pool's 3x3 window no longer fits.
        Input8 + "[Conv2d(4, Kernel = 3, Stride = 5), MaxPool([|3|]), Dense(10)]\npublic partial class Net { }",
        "ANC0010", DiagnosticSeverity.Error,
        "Layer 1 'features.1' (MaxPool): kernel 3x3 is larger than its padded input 2x2 (input 2x2, padding 0x0), so the output would be 0x0");

    [Fact]
    public void ANC0011_dense_weight_beyond_int_range() => AssertReports(
        "[Network(Channels = 3, Height = 227, Width = 227)]\n[[|Dense(20000)|]]\npublic partial class Net { }",
        "ANC0011", DiagnosticSeverity.Error,
        "Layer 0 'classifier.0' (Dense): its weight has 3091740000 elements, more than the 2147483647 that a flat float buffer can index");

    [Fact]
    public void ANC0012_parameter_count_beyond_the_limit() => AssertReports(
        "[Network(Channels = 3, Height = 227, Width = 227)]\n[Dense(7000)]\npublic partial class [|Net|] { }",
        "ANC0012", DiagnosticSeverity.Warning,
        "Network 'Specs.Net': the parameter count is 1,082,116,000, beyond the 1,000,000,000 at which this warning starts; check the layer sizes");

    [Fact]
    public void ANC0012_training_activations_beyond_the_limit() => AssertReports(
        // conv output 4096 x 227 x 227 = 211,062,784 floats; kept once plus two gradient buffers = 12 bytes each.
        "[Network(Channels = 3, Height = 227, Width = 227)]\n[Conv2d(4096, Kernel = 1), MaxPool(227), Dense(10)]\npublic partial class [|Net|] { }",
        "ANC0012", DiagnosticSeverity.Warning,
        "Network 'Specs.Net': the training activation memory per sample is 2.36 GiB, beyond the 1 GiB at which this warning starts; check the layer sizes");

    [Fact]
    public void ANC0013_the_papers_224_input_drops_a_row_and_a_column_in_conv1() => AssertReports(
        "[Network(Channels = 3, Height = 224, Width = 224)]\n[[|Conv2d(96, Kernel = 11, Stride = 4)|], Relu, MaxPool(2)]\n[Dense(10)]\npublic partial class Net { }",
        "ANC0013", DiagnosticSeverity.Warning,
        "Layer 0 'features.0' (Conv2d): with kernel 11x11 and stride 4x4, the last 1 row(s) and 1 column(s) of its 224x224 input are never read; an input of 227x227 would tile exactly");

    [Fact]
    public void ANC0013_is_not_reported_when_only_padding_is_dropped()
    {
        // torchvision's conv1: (224 + 2*2 - 11) mod 4 = 1, and that last column is padding, not image.
        GeneratorOutcome outcome = GeneratorHarness.Run(Header +
            "[Network(Channels = 3, Height = 224, Width = 224)]\n[Conv2d(64, Kernel = 11, Stride = 4, Padding = 2), Relu, MaxPool(3, Stride = 2), Dense(10)]\npublic partial class Net { }");
        Assert.Empty(outcome.GeneratorDiagnostics);
        Assert.Equal(27, outcome.SingleModel.Layers[2].Output.Height);
    }

    [Fact]
    public void ANC0013_a_max_pool_that_does_not_tile() => AssertReports(
        "[Network(Channels = 1, Height = 7, Width = 6)]\n[Conv2d(2, Kernel = 1), [|MaxPool(2)|], Dense(10)]\npublic partial class Net { }",
        "ANC0013", DiagnosticSeverity.Warning,
        "Layer 1 'features.1' (MaxPool): with kernel 2x2 and stride 2x2, the last 1 row(s) and 0 column(s) of its 7x6 input are never read; an input of 8x6 would tile exactly");

    [Fact]
    public void ANC0013_carries_the_tiling_input_and_padding_for_its_code_fixes_at_a_source_location()
    {
        // 224: conv1 drops a row and a column, and so does the 3x3 stride-2 pool on its 54x54 output; 227 tiles both.
        GeneratorOutcome outcome = GeneratorHarness.Run(Header +
            "[Network(Channels = 3, Height = 224, Width = 224)]\n[Conv2d(96, Kernel = 11, Stride = 4), Relu, MaxPool(3, Stride = 2), Dense(10)]\npublic partial class Net { }");
        Diagnostic[] diagnostics = outcome.GeneratorDiagnostics.Where(d => d.Id == "ANC0013").OrderBy(d => d.Location.SourceSpan.Start).ToArray();
        Assert.Equal(2, diagnostics.Length);
        Assert.All(diagnostics, d =>
        {
            Assert.True(d.Location.IsInSource, "code fixes find their document through the location's syntax tree");
            Assert.Equal("227", d.Properties[DiagnosticPropertyNames.TilingInputHeight]);
            Assert.Equal("227", d.Properties[DiagnosticPropertyNames.TilingInputWidth]);
        });
        Assert.Equal("Padding=2", diagnostics[0].Properties[DiagnosticPropertyNames.TilingPaddingArguments]);
        Assert.Equal("Padding=1", diagnostics[1].Properties[DiagnosticPropertyNames.TilingPaddingArguments]);
    }

    [Fact]
    public void ANC0013_after_an_adaptive_pool_has_no_input_fix()
    {
        GeneratorOutcome outcome = GeneratorHarness.Run(Header +
            "[Network(Channels = 1, Height = 8, Width = 8)]\n[Conv2d(2, Kernel = 1), AdaptiveAvgPool(7), MaxPool(2), Dense(10)]\npublic partial class Net { }");
        Diagnostic diagnostic = Assert.Single(outcome.GeneratorDiagnostics);
        Assert.False(diagnostic.Properties.ContainsKey(DiagnosticPropertyNames.TilingInputHeight));
        Assert.Equal("Padding=1", diagnostic.Properties[DiagnosticPropertyNames.TilingPaddingArguments]);
    }

    [Fact]
    public void ANC0014_groups_that_do_not_divide_the_input_channels() => AssertReports(
        "[Network(Channels = 3, Height = 8, Width = 8)]\n[Conv2d(6, Kernel = 3, [|Groups = 2|]), Dense(10)]\npublic partial class Net { }",
        "ANC0014", DiagnosticSeverity.Error, "Layer 0 'features.0' (Conv2d): Groups 2 does not divide its input channels (3)");

    [Fact]
    public void ANC0014_groups_that_do_not_divide_the_output_channels() => AssertReports(
        "[Network(Channels = 4, Height = 8, Width = 8)]\n[Conv2d(6, Kernel = 3, [|Groups = 4|]), Dense(10)]\npublic partial class Net { }",
        "ANC0014", DiagnosticSeverity.Error, "Layer 0 'features.0' (Conv2d): Groups 4 does not divide its output channels (6)");

    [Fact]
    public void ANC0015_dense_in_features_disagree_with_the_flattened_input() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3), Relu, Dense(10, [|InFeatures = 100|])]\npublic partial class Net { }",
        "ANC0015", DiagnosticSeverity.Error, "Layer 2 'classifier.0' (Dense): InFeatures is 100, but the previous output [4, 6, 6] flattens to 144 features");

    [Fact]
    public void ANC0015_carries_the_inferred_in_features_for_its_code_fix()
    {
        GeneratorOutcome outcome = GeneratorHarness.Run(Header + Input8 + "[Conv2d(4, Kernel = 3), Relu, Dense(10, InFeatures = 100)]\npublic partial class Net { }");
        Diagnostic diagnostic = Assert.Single(outcome.GeneratorDiagnostics);
        Assert.True(diagnostic.Location.IsInSource);
        Assert.Equal("144", diagnostic.Properties[DiagnosticPropertyNames.InferredInFeatures]);
    }

    [Fact]
    public void ANC0016_pool_after_dense() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3), Dense(16), [|MaxPool(2)|], Dense(10)]\npublic partial class Net { }",
        "ANC0016", DiagnosticSeverity.Error, "Layer 2 'features.2' (MaxPool) cannot follow layer 1 'features.1' (Dense): its input is already flattened to 16 features");

    [Fact]
    public void ANC0017_network_not_ending_with_dense() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3), Dense(10), [|Relu|]]\npublic partial class Net { }",
        "ANC0017", DiagnosticSeverity.Error,
        "Network 'Specs.Net' must end with a Dense layer that produces the class scores, but its last layer is layer 2 (Relu)");

    [Fact]
    public void ANC0018_relu_first() => AssertReports(
        Input8 + "[[|Relu|], Conv2d(4, Kernel = 3), Dense(10)]\npublic partial class Net { }",
        "ANC0018", DiagnosticSeverity.Error, "Layer 0 'features.0' (Relu): ReLU cannot be the first layer; it would rectify the network's input");

    [Fact]
    public void ANC0019_loss_head_not_last() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3), [|SoftmaxCrossEntropy|], Dense(10)]\npublic partial class Net { }",
        "ANC0019", DiagnosticSeverity.Error,
        "Layer 1 (SoftmaxCrossEntropy): SoftmaxCrossEntropy is the loss head and must be the last layer, but layer 2 (Dense) follows it");

    [Fact]
    public void ANC0020_duplicate_state_dict_name() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3, Name = \"stem\"), Relu, Conv2d(4, Kernel = 3, [|Name = \"stem\"|]), Dense(10)]\npublic partial class Net { }",
        "ANC0020", DiagnosticSeverity.Error, "Layer 2 'stem' (Conv2d): name 'stem' is already used by layer 0 (Conv2d)");

    [Fact]
    public void ANC0020_duplicate_identifier_from_a_name_and_a_default() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3, Name = \"conv.2\"), [|Conv2d(4, Kernel = 3)|], Dense(10)]\npublic partial class Net { }",
        "ANC0020", DiagnosticSeverity.Error, "Layer 1 'features.1' (Conv2d): C# identifier 'Conv2' is already used by layer 0 'conv.2' (Conv2d)");

    [Fact]
    public void ANC0021_name_without_letters_or_digits() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3, [|Name = \"...\"|]), Dense(10)]\npublic partial class Net { }",
        "ANC0021", DiagnosticSeverity.Error, "Layer 0 (Conv2d): Name '...' cannot be used: it has no letter or digit to make a C# identifier from");

    [Fact]
    public void ANC0022_single_class_output() => AssertReports(
        Input8 + "[Conv2d(4, Kernel = 3), Dense([|1|])]\npublic partial class Net { }",
        "ANC0022", DiagnosticSeverity.Warning,
        "Network 'Specs.Net' ends in a Dense layer with one output; a softmax over one class is always 1, so the loss is constant and nothing trains");

    private const string Layers8 = Input8 + "[Conv2d(4, Kernel = 3), Relu, MaxPool(2), Dense(3)]\n";

    [Fact]
    public void ANC0023_member_named_like_a_generated_one() => AssertReports(
        Layers8 + "public partial class Net\n{\n    public const long [|ParameterCount|] = 1;\n}",
        "ANC0023", DiagnosticSeverity.Error,
        "Member 'ParameterCount' collides with the constant 'ParameterCount' that the generator adds to network 'Specs.Net'; rename it");

    [Fact]
    public void ANC0023_method_with_the_signature_of_a_generated_one() => AssertReports(
        Layers8 + "public partial class Net\n{\n    public void [|Forward|](System.ReadOnlySpan<float> input, int batch, System.Span<float> logits) { }\n}",
        "ANC0023", DiagnosticSeverity.Error,
        "Method 'Forward(ReadOnlySpan<float>, int, Span<float>)' collides with the method 'Forward(ReadOnlySpan<float>, int, Span<float>)' " +
        "that the generator adds to network 'Specs.Net'; rename it or change its parameters");

    [Fact]
    public void ANC0023_constructor_with_the_signature_of_the_generated_one() => AssertReports(
        Layers8 + "public partial class Net\n{\n    public [|Net|](int size, AlexNetCompiler.Cpu.CpuContext? context) { }\n}",
        "ANC0023", DiagnosticSeverity.Error,
        "Constructor 'Net(int, CpuContext?)' collides with the constructor 'Net(int, CpuContext?)' that the generator adds to network 'Specs.Net'; change its parameters");

    [Fact]
    public void ANC0023_class_named_like_a_generated_member() => AssertReports(
        Layers8 + "public partial class [|Model|] { }",
        "ANC0023", DiagnosticSeverity.Error,
        "Class name 'Model' collides with the property 'Model' that the generator adds to network 'Specs.Model'; rename the class");

    [Fact]
    public void ANC0023_primary_constructor() => AssertReports(
        Layers8 + "public partial class Net[|(int size)|]\n{\n    public int Size => size;\n}",
        "ANC0023", DiagnosticSeverity.Error,
        "Primary constructor 'Net(int)' collides with the constructor 'Net(int, CpuContext?)' that the generator adds to network 'Specs.Net'; declare an ordinary constructor instead");

    [Fact]
    public void ANC0023_inherited_member_a_generated_one_would_hide() => AssertReports(
        Layers8 + "public partial class Net : [|Base|] { }\npublic class Base { public int MaxBatch => 1; }",
        "ANC0023", DiagnosticSeverity.Error,
        "Member 'MaxBatch', inherited from 'Specs.Base', collides with the property 'MaxBatch' that the generator adds to network 'Specs.Net'; rename it in the base class");

    [Fact]
    public void Attributes_with_compiler_errors_get_no_generator_diagnostics_and_no_code()
    {
        GeneratorOutcome outcome = GeneratorHarness.Run(Header + Input8 + "[Conv2d(\"four\", Kernel = 3), Dense(10)]\npublic partial class Net { }");
        Assert.Null(outcome.Result.Exception);
        Assert.Empty(outcome.GeneratorDiagnostics);
        Assert.Empty(outcome.Sources);
        Assert.Contains(outcome.CompilationErrors, d => d.Id == "CS1503");
    }

    private static DiagnosticDescriptor[] AllDescriptors() => typeof(DiagnosticDescriptors)
        .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        .Where(f => f.FieldType == typeof(DiagnosticDescriptor))
        .Select(f => (DiagnosticDescriptor)f.GetValue(null)!)
        .ToArray();

    // The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces turned into hyphens.
    private static string GitHubAnchor(string heading) =>
        new string(heading.Trim().ToLowerInvariant().Where(c => char.IsLetterOrDigit(c) || c is '-' or '_' or ' ').ToArray()).Replace(' ', '-');

    private static readonly string DiagnosticsDoc = Repository.ReadText("docs/diagnostics.md");

    private static IEnumerable<string> DocHeadings(string level) =>
        DiagnosticsDoc.Split('\n').Where(line => line.StartsWith(level + " ", StringComparison.Ordinal)).Select(line => line[(level.Length + 1)..]);

    [Fact]
    public void Every_descriptor_is_tracked_in_the_release_files_and_documented()
    {
        DiagnosticDescriptor[] descriptors = AllDescriptors();
        Assert.Equal(23, descriptors.Length);
        string releases = Repository.ReadText("generators/AlexNetCompiler.Generators/AnalyzerReleases.Shipped.md") +
            Repository.ReadText("generators/AlexNetCompiler.Generators/AnalyzerReleases.Unshipped.md");
        var sections = DocHeadings("##").ToList();
        Assert.Equal(descriptors.Length, descriptors.Select(d => d.Id).Distinct().Count());
        foreach (DiagnosticDescriptor d in descriptors)
        {
            Assert.Contains($"{d.Id} | {d.Category} | {d.DefaultSeverity} | {d.Title}", releases);
            Assert.Single(sections, s => s == d.Id);
            Assert.Contains($"## {d.Id}\n\n**{d.Title}** ({d.DefaultSeverity.ToString().ToLowerInvariant()})\n", DiagnosticsDoc);
        }
    }

    [Fact]
    public void Every_descriptor_links_to_its_section_of_the_diagnostics_reference()
    {
        Assert.EndsWith("/docs/diagnostics.md", DiagnosticDescriptors.HelpDocumentUrl);
        Assert.StartsWith(DiagnosticDescriptors.RepositoryUrl + "/", DiagnosticDescriptors.HelpDocumentUrl);
        var anchors = DocHeadings("#").Concat(DocHeadings("##")).Concat(DocHeadings("###")).Select(GitHubAnchor).ToHashSet();
        foreach (DiagnosticDescriptor d in AllDescriptors())
        {
            Assert.True(Uri.TryCreate(d.HelpLinkUri, UriKind.Absolute, out Uri? link), $"{d.Id}: help link '{d.HelpLinkUri}'");
            Assert.Equal(DiagnosticDescriptors.HelpDocumentUrl, link!.GetLeftPart(UriPartial.Path));
            string anchor = link.Fragment.TrimStart('#');
            Assert.Equal(d.Id.ToLowerInvariant(), anchor);
            Assert.Contains(anchor, anchors);
        }
    }

    [Fact]
    public void Reported_diagnostics_carry_their_help_link()
    {
        Diagnostic diagnostic = AssertReports(Input8 + "public partial class [|Net|] { }",
            "ANC0006", DiagnosticSeverity.Error, "Network 'Specs.Net' declares no layers; add layer attributes such as [Conv2d(...)] and [Dense(...)]");
        Assert.Equal(DiagnosticDescriptors.HelpDocumentUrl + "#anc0006", diagnostic.Descriptor.HelpLinkUri);
    }
}
