using Microsoft.CodeAnalysis;

namespace AlexNetCompiler.Generators.Tests.Infrastructure;

/// <summary>The example projects' real spec files, read from the repository so that tests track them.</summary>
internal sealed record Example(string Name, string SpecPath, string ProgramPath, string TypeName)
{
    public static readonly Example Canonical = new("CanonicalAlexNet", "examples/CanonicalAlexNet/AlexNet2012.cs", "examples/CanonicalAlexNet/Program.cs", "CanonicalAlexNet.AlexNet2012");
    public static readonly Example Torchvision = new("TorchvisionAlexNet", "examples/TorchvisionAlexNet/TorchvisionAlexNet.cs", "examples/TorchvisionAlexNet/Program.cs", "TorchvisionAlexNet.TorchvisionAlexNet");
    public static readonly Example Fashion = new("FashionMnist", "examples/FashionMnist/FashionNet.cs", "examples/FashionMnist/Program.cs", "FashionMnist.FashionNet");

    public static readonly Example[] All = { Canonical, Torchvision, Fashion };

    public static TheoryData<string> Names => new(All.Select(e => e.Name));

    public static Example Named(string name) => All.Single(e => e.Name == name);

    /// <summary>The spec and the Program.cs that uses the generated members, compiled as the example project is.</summary>
    public Compilation CreateCompilation() => GeneratorHarness.CreateCompilation(
        new[] { (SpecPath, Repository.ReadText(SpecPath)), (ProgramPath, Repository.ReadText(ProgramPath)) },
        OutputKind.ConsoleApplication);

    public GeneratorOutcome Run() => GeneratorHarness.Run(CreateCompilation());
}
