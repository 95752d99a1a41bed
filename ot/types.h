// Shared matrix and vector types of the ot package.
//
// Point clouds cross the API of every ot solver as row-major float matrices, one point per
// row (n points x d dims, point i at data() + i * d). Weights are float column vectors.
//
//   otgen::ot::RowMatrixXf x(n, d);             // n source points in R^d
//   const Eigen::Ref<const otgen::ot::RowMatrixXf>& view = x;
#ifndef OTGEN_OT_TYPES_H_
#define OTGEN_OT_TYPES_H_

#include "Eigen/Dense"

namespace otgen::ot {

// n x d points, row-major: the layout every ot API takes for point clouds.
using RowMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// Row-major double matrix (cost matrices, dense transport plans).
using RowMatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

}  // namespace otgen::ot

#endif  // OTGEN_OT_TYPES_H_
