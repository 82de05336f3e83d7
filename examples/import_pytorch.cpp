// Import a model trained in PyTorch: a DynamicVAE state_dict exported to safetensors (no
// dyad metadata) loads with the columns of a preset; sizes come from the tensor shapes.
//   import_pytorch MODEL.safetensors DATA.csv [PRESET]
#include <dyad/dyad.hpp>

#include <iostream>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: import_pytorch MODEL.safetensors DATA.csv [PRESET (default fivefold)]\n";
    return 2;
  }
  try {
    const dyad::ModelConfig roles = dyad::preset(argc > 3 ? argv[3] : "fivefold");
    auto model = dyad::Model<float>::load(argv[1], {roles});
    const auto& c = model.config();
    std::cout << "loaded " << argv[1] << ": " << dyad::to_string(c.cell) << ", H " << c.hidden << ", layers " << c.layers << ", "
              << (c.bidirectional ? "bidirectional" : "unidirectional") << ", Z " << c.latent << "\n";
    dyad::CsvOptions options;
    options.signals = c.roles.encoder;
    const dyad::Dataset data = dyad::read_csv(argv[2], options);
    // A PyTorch state_dict carries no normaliser: fit one on this data's normal segments,
    // as the upstream code fits it on its training data.
    std::vector<std::size_t> normal;
    for (std::size_t i = 0; i < data.size(); ++i)
      if (data.meta(i).label == 0) normal.push_back(i);
    model.set_normalizer(dyad::Normalizer::fit(data, normal, c.roles.encoder));
    const dyad::Scores s = model.score(data);
    for (std::size_t i = 0; i < std::min<std::size_t>(s.size(), 10); ++i)
      std::cout << data.meta(i).car << " segment " << data.meta(i).segment << "  rec_error " << s.rec_error[Eigen::Index(i)]
                << "\n";
  } catch (const std::exception& e) {
    std::cerr << "import_pytorch: " << e.what() << "\n";
    return 1;
  }
}
