using Microsoft.CodeAnalysis.Testing;

namespace AlexNetCompiler.CodeFixes.Tests;

public sealed class MakeNetworkPartialTests
{
    private static Task Verify(string source, string fixedSource) => new NetworkCodeFixTest<MakeNetworkPartialCodeFixProvider>
    {
        TestCode = NetworkCodeFixTest<MakeNetworkPartialCodeFixProvider>.Header + source,
        FixedCode = NetworkCodeFixTest<MakeNetworkPartialCodeFixProvider>.Header + fixedSource,
        CodeActionEquivalenceKey = MakeNetworkPartialCodeFixProvider.EquivalenceKey,
    }.RunAsync();

    [Fact]
    public Task ANC0002_adds_partial_after_the_other_modifiers() => Verify(
        "[Network(Channels = 1, Height = 8, Width = 8)]\n[Conv2d(4, Kernel = 3), Relu, Dense(10)]\npublic sealed class {|ANC0002:Net|} { }\n",
        "[Network(Channels = 1, Height = 8, Width = 8)]\n[Conv2d(4, Kernel = 3), Relu, Dense(10)]\npublic sealed partial class Net { }\n");

    [Fact]
    public Task ANC0002_adds_partial_to_a_class_without_modifiers_keeping_its_indentation() => Verify(
        "[Network(Channels = 1, Height = 8, Width = 8)]\n[Conv2d(4, Kernel = 3), Relu, Dense(10)]\n    class {|ANC0002:Net|} { }\n",
        "[Network(Channels = 1, Height = 8, Width = 8)]\n[Conv2d(4, Kernel = 3), Relu, Dense(10)]\n    partial class Net { }\n");
}

public sealed class SetInFeaturesTests
{
    [Fact]
    public Task ANC0015_sets_InFeatures_to_the_flattened_previous_output() => new NetworkCodeFixTest<SetInFeaturesCodeFixProvider>
    {
        TestCode = NetworkCodeFixTest<SetInFeaturesCodeFixProvider>.Header +
            "[Network(Channels = 1, Height = 8, Width = 8)]\n[Conv2d(4, Kernel = 3), Relu, Dense(10, {|ANC0015:InFeatures = 100|})]\npublic partial class Net { }\n",
        FixedCode = NetworkCodeFixTest<SetInFeaturesCodeFixProvider>.Header +
            "[Network(Channels = 1, Height = 8, Width = 8)]\n[Conv2d(4, Kernel = 3), Relu, Dense(10, InFeatures = 144)]\npublic partial class Net { }\n",
        CodeActionEquivalenceKey = SetInFeaturesCodeFixProvider.EquivalenceKey,
    }.RunAsync();
}

public sealed class TileInputTests
{
    private const string Header = NetworkCodeFixTest<TileInputCodeFixProvider>.Header;

    private static NetworkCodeFixTest<TileInputCodeFixProvider> Test(string source, string fixedSource, string equivalenceKey) => new()
    {
        TestCode = Header + source,
        FixedCode = Header + fixedSource,
        CodeActionEquivalenceKey = equivalenceKey,
    };

    [Fact]
    public Task ANC0013_changes_the_papers_224_input_to_227() => Test(
        "[Network(Channels = 3, Height = 224, Width = 224)]\n[{|ANC0013:Conv2d(96, Kernel = 11, Stride = 4)|}, Relu, Dense(10)]\npublic partial class Net { }\n",
        "[Network(Channels = 3, Height = 227, Width = 227)]\n[Conv2d(96, Kernel = 11, Stride = 4), Relu, Dense(10)]\npublic partial class Net { }\n",
        TileInputCodeFixProvider.ChangeInputEquivalenceKey).RunAsync();

    [Fact]
    public Task ANC0013_pads_the_papers_conv1_by_2_as_torchvision_does() => Test(
        "[Network(Channels = 3, Height = 224, Width = 224)]\n[{|ANC0013:Conv2d(96, Kernel = 11, Stride = 4)|}, Relu, Dense(10)]\npublic partial class Net { }\n",
        "[Network(Channels = 3, Height = 224, Width = 224)]\n[Conv2d(96, Kernel = 11, Stride = 4, Padding = 2), Relu, Dense(10)]\npublic partial class Net { }\n",
        TileInputCodeFixProvider.SetPaddingEquivalenceKey).RunAsync();

    [Fact]
    public Task ANC0013_the_input_fix_tiles_every_layer_so_one_change_fixes_all_reports()
    {
        // 224: conv1 drops a row and a column, and so does the pool on its 54x54 output; 227 tiles both.
        NetworkCodeFixTest<TileInputCodeFixProvider> test = Test(
            "[Network(Channels = 3, Height = 224, Width = 224)]\n[{|ANC0013:Conv2d(96, Kernel = 11, Stride = 4)|}, Relu, {|ANC0013:MaxPool(3, Stride = 2)|}, Dense(10)]\npublic partial class Net { }\n",
            "[Network(Channels = 3, Height = 227, Width = 227)]\n[Conv2d(96, Kernel = 11, Stride = 4), Relu, MaxPool(3, Stride = 2), Dense(10)]\npublic partial class Net { }\n",
            TileInputCodeFixProvider.ChangeInputEquivalenceKey);
        test.NumberOfIncrementalIterations = 1;
        test.NumberOfFixAllIterations = 1;
        return test.RunAsync();
    }

    [Fact]
    public Task ANC0013_the_input_fix_looks_past_the_size_that_tiles_the_first_layer_only() => Test(
        // 227 would tile conv1 (the message's size) but leave its 55x55 output odd for the 2x2 pool; 231 tiles both.
        "[Network(Channels = 3, Height = 224, Width = 224)]\n[{|ANC0013:Conv2d(96, Kernel = 11, Stride = 4)|}, Relu, MaxPool(2), Dense(10)]\npublic partial class Net { }\n",
        "[Network(Channels = 3, Height = 231, Width = 231)]\n[Conv2d(96, Kernel = 11, Stride = 4), Relu, MaxPool(2), Dense(10)]\npublic partial class Net { }\n",
        TileInputCodeFixProvider.ChangeInputEquivalenceKey).RunAsync();

    [Fact]
    public Task ANC0013_pads_only_the_side_that_drops_input() => Test(
        "[Network(Channels = 1, Height = 9, Width = 8)]\n[{|ANC0013:Conv2d(2, Kernel = 2, Stride = 2)|}, Dense(10)]\npublic partial class Net { }\n",
        "[Network(Channels = 1, Height = 9, Width = 8)]\n[Conv2d(2, Kernel = 2, Stride = 2, PaddingHeight = 1), Dense(10)]\npublic partial class Net { }\n",
        TileInputCodeFixProvider.SetPaddingEquivalenceKey).RunAsync();

    [Fact]
    public Task ANC0013_pads_a_max_pool() => Test(
        "[Network(Channels = 1, Height = 7, Width = 6)]\n[Conv2d(2, Kernel = 1), {|ANC0013:MaxPool(2)|}, Dense(10)]\npublic partial class Net { }\n",
        "[Network(Channels = 1, Height = 7, Width = 6)]\n[Conv2d(2, Kernel = 1), MaxPool(2, Padding = 1), Dense(10)]\npublic partial class Net { }\n",
        TileInputCodeFixProvider.SetPaddingEquivalenceKey).RunAsync();

    [Fact]
    public Task ANC0013_replaces_a_written_padding() => Test(
        "[Network(Channels = 3, Height = 224, Width = 224)]\n[{|ANC0013:Conv2d(96, Kernel = 11, Stride = 4, Padding = 1)|}, Relu, Dense(10)]\npublic partial class Net { }\n",
        "[Network(Channels = 3, Height = 224, Width = 224)]\n[Conv2d(96, Kernel = 11, Stride = 4, Padding = 2), Relu, Dense(10)]\npublic partial class Net { }\n",
        TileInputCodeFixProvider.SetPaddingEquivalenceKey).RunAsync();

    [Fact]
    public Task ANC0013_changes_the_input_on_another_partial_declaration()
    {
        NetworkCodeFixTest<TileInputCodeFixProvider> test = new() { CodeActionEquivalenceKey = TileInputCodeFixProvider.ChangeInputEquivalenceKey };
        test.TestState.Sources.Add(("Input.cs", Header + "[Network(Channels = 1, Height = 7, Width = 6)]\npublic partial class Net { }\n"));
        test.TestState.Sources.Add(("Layers.cs", Header + "[Conv2d(2, Kernel = 1), {|ANC0013:MaxPool(2)|}, Dense(10)]\npublic partial class Net { }\n"));
        test.FixedState.Sources.Add(("Input.cs", Header + "[Network(Channels = 1, Height = 8, Width = 6)]\npublic partial class Net { }\n"));
        test.FixedState.Sources.Add(("Layers.cs", Header + "[Conv2d(2, Kernel = 1), MaxPool(2), Dense(10)]\npublic partial class Net { }\n"));
        return test.RunAsync();
    }

    [Fact]
    public Task ANC0013_no_input_fix_for_a_layer_after_an_adaptive_pool()
    {
        // The adaptive pool's 7x7 output is the same whatever the input: only padding can help the pool after it.
        const string Source = "[Network(Channels = 1, Height = 8, Width = 8)]\n[Conv2d(2, Kernel = 1), AdaptiveAvgPool(7), {|ANC0013:MaxPool(2)|}, Dense(10)]\npublic partial class Net { }\n";
        NetworkCodeFixTest<TileInputCodeFixProvider> test = Test(Source, Source, TileInputCodeFixProvider.ChangeInputEquivalenceKey);
        return test.RunAsync();
    }

    // Conv2d(2, Kernel = 2, Stride = 3) on 9x9 leaves one real row and column unread; a larger input or more padding
    // would change its 3x3 output, which the Dense layer's explicit InFeatures = 18 pins: neither fix is offered.
    private const string FixedInFeaturesSource =
        "[Network(Channels = 1, Height = 9, Width = 9)]\n[{|ANC0013:Conv2d(2, Kernel = 2, Stride = 3)|}, Dense(10, InFeatures = 18)]\npublic partial class Net { }\n";

    [Fact]
    public Task ANC0013_no_input_fix_that_would_break_an_explicit_InFeatures() =>
        Test(FixedInFeaturesSource, FixedInFeaturesSource, TileInputCodeFixProvider.ChangeInputEquivalenceKey).RunAsync();

    [Fact]
    public Task ANC0013_no_padding_fix_that_would_break_an_explicit_InFeatures() =>
        Test(FixedInFeaturesSource, FixedInFeaturesSource, TileInputCodeFixProvider.SetPaddingEquivalenceKey).RunAsync();

    [Fact]
    public Task ANC0013_no_padding_fix_when_a_max_pool_would_need_more_than_half_its_kernel()
    {
        // MaxPool(2, Stride = 4) on 11 rows: unpadded, the windows stop 1 real row short; padded by 1 (the most a
        // 2-wide pool allows), 3 short, 2 of them real.
        const string Source = "[Network(Channels = 1, Height = 11, Width = 11)]\n[Conv2d(2, Kernel = 1), {|ANC0013:MaxPool(2, Stride = 4)|}, Dense(10)]\npublic partial class Net { }\n";
        return Test(Source, Source, TileInputCodeFixProvider.SetPaddingEquivalenceKey).RunAsync();
    }
}
