using System.Collections.Immutable;
using System.Linq;
using System.Text;
using AlexNetCompiler.Generators.Diagnostics;
using AlexNetCompiler.Generators.Emitters;
using AlexNetCompiler.Generators.Lowering;
using AlexNetCompiler.Generators.Model;
using AlexNetCompiler.Generators.Inference;
using AlexNetCompiler.Generators.Parsing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace AlexNetCompiler.Generators;

/// <summary>
/// The incremental generator: [Network] classes -> <see cref="NetworkSpec"/> (parser) -> <see cref="NetworkResult"/>
/// (shape inference) -> an <see cref="ExecutionPlan"/> per backend (lowering) -> <see cref="GeneratedNetwork"/>
/// (emitters: source files, diagnostics, collisions with the user's members). Every step's output is an equatable
/// record, so an edit that does not touch a network's spec leaves its steps cached.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class NetworkGenerator : IIncrementalGenerator
{
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        IncrementalValuesProvider<NetworkSpec> specs = context.SyntaxProvider
            .ForAttributeWithMetadataName(NetworkParser.NetworkAttributeName, NetworkParser.IsCandidate, NetworkParser.Parse)
            .Where(static spec => spec is not null)
            .Select(static (spec, _) => spec!)
            .WithTrackingName(TrackingNames.NetworkSpecs);

        IncrementalValuesProvider<NetworkResult> results = specs
            .Select(static (spec, cancellationToken) => ShapeInference.Build(spec, cancellationToken))
            .WithTrackingName(TrackingNames.NetworkModels);

        IncrementalValuesProvider<GeneratedNetwork> generated = results
            .Select(static (result, _) => GeneratedNetwork.Create(result))
            .WithTrackingName(TrackingNames.GeneratedNetworks);

        context.RegisterSourceOutput(generated, static (context, network) => AddSources(context, network));

        // The diagnostics that have IDE code fixes are reported at source locations (in the compilation's syntax
        // trees): code fixes find their document through Location.SourceTree, which a location made from a file path
        // lacks. The trees come from the compilation, which changes with every edit, but this step's output (each
        // diagnostic with its tree) only changes when a fixable diagnostic or the file it is in does.
        IncrementalValueProvider<EquatableArray<SourceDiagnostic>> fixable = generated
            .SelectMany(static (network, _) => network.Diagnostics.Items.Where(static d => IsFixable(d)))
            .Collect()
            .Combine(context.CompilationProvider)
            .Select(static (pair, _) => SourceDiagnostic.Locate(pair.Left, pair.Right));
        context.RegisterSourceOutput(fixable, static (context, diagnostics) =>
        {
            foreach (SourceDiagnostic diagnostic in diagnostics) context.ReportDiagnostic(diagnostic.ToDiagnostic());
        });

        // A collision is reported at the user's member, whose location only the spec holds (it moves with every edit
        // above the member): the few networks with collisions are joined with the specs here, so that such an edit
        // reruns this lookup and not the emitters.
        IncrementalValueProvider<ImmutableArray<NetworkCollisions>> collisions = generated
            .Where(static network => network.Collisions.Length > 0)
            .Select(static (network, _) => new NetworkCollisions(network.DisplayName, network.Collisions))
            .Collect();

        context.RegisterSourceOutput(specs.Combine(collisions), static (context, pair) => ReportCollisions(context, pair.Left, pair.Right));
    }

    private static void AddSources(SourceProductionContext context, GeneratedNetwork network)
    {
        foreach (DiagnosticInfo diagnostic in network.Diagnostics)
        {
            if (!IsFixable(diagnostic)) context.ReportDiagnostic(diagnostic.ToDiagnostic());
        }
        if (network.Collisions.Length > 0) return;
        foreach (GeneratedFile file in network.Files)
        {
            context.AddSource(file.HintName, SourceText.From(file.Text, Encoding.UTF8));
        }
    }

    private static bool IsFixable(DiagnosticInfo diagnostic) => diagnostic.Descriptor.Id is
        FixableDiagnosticIds.NetworkNotPartial or FixableDiagnosticIds.StrideDropsInput or FixableDiagnosticIds.DenseInFeaturesMismatch;

    private static void ReportCollisions(SourceProductionContext context, NetworkSpec spec, ImmutableArray<NetworkCollisions> networks)
    {
        foreach (NetworkCollisions network in networks)
        {
            if (network.DisplayName != spec.DisplayName) continue;
            foreach (MemberCollision collision in network.Collisions)
            {
                foreach (UserMember member in spec.Members)
                {
                    if (member.Name != collision.User) continue;
                    context.ReportDiagnostic(collision.ToDiagnostic(spec.DisplayName, member.Location).ToDiagnostic());
                }
            }
        }
    }
}

/// <summary>Names of the pipeline steps, for incrementality tests (GeneratorRunResult.TrackedSteps).</summary>
internal static class TrackingNames
{
    public const string NetworkSpecs = "NetworkSpecs";
    public const string NetworkModels = "NetworkModels";
    public const string GeneratedNetworks = "GeneratedNetworks";
}
