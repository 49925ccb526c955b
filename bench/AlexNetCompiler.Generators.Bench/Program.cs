// Generator benchmarks. Run: dotnet run -c Release --project bench/AlexNetCompiler.Generators.Bench -- --job short --filter '*'
BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(AlexNetCompiler.Generators.Bench.GeneratorBenchmarks).Assembly).Run(args);
