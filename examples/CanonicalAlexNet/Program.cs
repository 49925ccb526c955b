// Prints what the generator computed at compile time for this network.
System.Console.WriteLine(CanonicalAlexNet.AlexNet2012.Model.ToSummary(batch: 128, threads: System.Environment.ProcessorCount));
